"""hbvip.heartbeat.hb_vip over real ssh on the two-host lab (issue 4).

The agent runs on both hosts with the seed's files (first VIP homed on server1). A playbook adds a
second VIP homed on server2, gives it away with state=standby, removes it with state=absent; the
client probes both VIPs the whole time. The first VIP must not lose one probe: an edit of another
group never blinks it. Every step is rerun and must report changed=0.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.probe import Probe, ProbeResult, agent_cmd, wait_ready
from tests.integration.pair import FAST, Agent, install, wait_until

REPO = Path(__file__).resolve().parents[2]
# Written to a temp dir at run time rather than kept in the tree: ansible-lint runs --offline on
# the repo and cannot resolve the collection's own modules there.
PLAYBOOK = """\
---
- name: A second VIP on the pair with hb_vip
  hosts: pair
  gather_facts: false
  vars:
    hb_vip_spec:
      address: "{{ hb_vip_address }}/24"
      interface: eth0
      home_node: server2
      resources: [failback.sh]
  tasks:
    - name: Declare or remove the second VIP's group on both nodes
      hbvip.heartbeat.hb_vip:
        address: "{{ hb_vip_spec.address }}"
        interface: "{{ hb_vip_spec.interface }}"
        home_node: "{{ hb_vip_spec.home_node }}"
        resources: "{{ hb_vip_spec.resources }}"
        state: "{{ hb_vip_state }}"
        hbvip_path: "{{ hb_vip_hbvip_path }}"
      when: hb_vip_state in ['present', 'absent']

    - name: Server2 gives the second VIP to its peer
      hbvip.heartbeat.hb_vip:
        address: "{{ hb_vip_spec.address }}"
        state: standby
        timeout: 20
        hbvip_path: "{{ hb_vip_hbvip_path }}"
      when: hb_vip_state == 'standby' and inventory_hostname == 'server2'
"""
HBVIP = str(REPO / ".venv" / "bin" / "hbvip")
PORT = 5405


@pytest.fixture(scope="module")
def pair(lab_support: None) -> Iterator[tuple[Lab, list[Agent]]]:
    """One lab for the module's tests: each leaves haresources and the holders as it found them."""
    with Lab(prefix=f"hm{os.getpid()}", net=None, ssh=True) as lab:
        install(lab, FAST)
        agents: list[Agent] = []
        try:
            for name in ("server1", "server2"):
                agents.append(Agent(lab.hosts[name]).start())
            yield lab, agents
        finally:
            for agent in agents:
                agent.stop()


def second_prober(lab: Lab, address: str) -> Probe:
    """Probe a VIP other than lab.vip; the responders lab.probe() started answer on every address."""
    assert lab.client is not None
    out = lab.dir / f"probe-{address}.log"
    proc = lab.client.spawn(agent_cmd("probe", address, PORT, 0.02, out))
    wait_ready(out, proc, "second prober")
    return Probe(out, proc, [])


def recap(result: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host: {'server1': {'ok': 2, 'changed': 1, 'failed': 0, ...}}."""
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
            for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", result.stdout, re.M)}


def lost_while_served(result: ProbeResult, until: float) -> int:
    """Probes lost between the first answer and `until` (the end of the play)."""
    first = next(ts for ts, host in result.samples if host is not None)
    return sum(1 for ts, host in result.samples if host is None and first <= ts <= until)


READ_PLAYBOOK = """\
---
- name: Read the pair with hb_vip_info and a query-style hb_vip call
  hosts: pair
  gather_facts: false
  tasks:
    - name: Read the pair
      hbvip.heartbeat.hb_vip_info:
        hbvip_path: "{{ hb_vip_hbvip_path }}"
      register: info

    - name: Ask hb_vip where the VIP runs, with nothing but its address
      hbvip.heartbeat.hb_vip:
        address: "{{ hb_vip_address }}"
        hbvip_path: "{{ hb_vip_hbvip_path }}"
      register: query

    - name: Check what both said
      ansible.builtin.assert:
        that:
          - info.running and info.node.name == inventory_hostname
          - info.peer.name == ('server2' if inventory_hostname == 'server1' else 'server1')
          - info.peer.state == 'active'
          - info.groups | map(attribute='home_node') | list == ['server1']
          - info.groups | map(attribute='holder') | list == ['server1']
          - info.groups[0].vips == [hb_vip_address]
          - query.holder == 'server1' and not query.changed
"""


def test_hb_vip_info_and_a_query_call_change_nothing(pair: tuple[Lab, list[Agent]], collections: Path,
                                                     tmp_path: Path) -> None:
    """Issue 14: `hb_vip: address=<vip>` once rewrote `IPaddr::<vip>/24/eth0` without the interface and
    the agent released and re-acquired the VIP. A read must leave the file byte-identical (mtime too),
    release no group and lose no probe."""
    lab, agents = pair
    playbook = tmp_path / "read.yml"
    playbook.write_text(READ_PLAYBOOK)
    inventory = lab.write_inventory(tmp_path / "inventory.yml", extra_vars={
        "hb_vip_address": lab.vip, "hb_vip_hbvip_path": HBVIP})
    files = {a.host.name: a.host.path("/etc/ha.d/haresources") for a in agents}
    before = {name: (p.read_bytes(), p.stat().st_mtime_ns) for name, p in files.items()}
    logs = {a.host.name: len(a.ha_log()) for a in agents}
    probe = lab.probe(PORT, 0.01)
    try:
        probe.wait_for("server1", timeout=15)
        result = lab.run_controller(
            ["ansible-playbook", "-i", str(inventory), str(playbook)], check=False, timeout=120,
            env={"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_PIPELINING": "1", "ANSIBLE_NOCOLOR": "1"})
        end = time.monotonic()
    finally:
        seen = probe.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in recap(result).values()), result.stdout
    assert {name: (p.read_bytes(), p.stat().st_mtime_ns) for name, p in files.items()} == before
    for agent in agents:
        new_log = agent.ha_log()[logs[agent.host.name]:]
        assert "group.release" not in new_log and "reload" not in new_log, new_log
    assert seen.holders() == ["server1"]
    assert lost_while_served(seen, end) == 0, f"a read blinked the VIP: gaps {seen.gaps()}"


def test_hb_vip_adds_moves_and_removes_a_second_vip_without_touching_the_first(
        pair: tuple[Lab, list[Agent]], collections: Path, tmp_path: Path) -> None:
    lab, agents = pair
    vip2 = lab.addr(101)
    playbook = tmp_path / "hb_vip_second_vip.yml"
    playbook.write_text(PLAYBOOK)
    inventory = lab.write_inventory(tmp_path / "inventory.yml", extra_vars={
        "hb_vip_address": vip2, "hb_vip_hbvip_path": HBVIP})

    def play(state: str) -> dict[str, dict[str, int]]:
        result = lab.run_controller(
            ["ansible-playbook", "-i", str(inventory), str(playbook), "-e", f"hb_vip_state={state}"],
            check=False, timeout=120,
            env={"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_PIPELINING": "1",
                 "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "4"})
        assert result.returncode == 0, f"{state}:\n{result.stdout}\n{result.stderr}"
        return recap(result)

    first = lab.probe(PORT, 0.01)
    second = None
    try:
        first.wait_for("server1", timeout=15)
        second = second_prober(lab, vip2)

        counts = play("present")
        assert (counts["server1"]["changed"], counts["server2"]["changed"]) == (1, 1)
        for agent in agents:
            assert f"{vip2}/24/eth0" in agent.host.read("/etc/ha.d/haresources")
        second.wait_for("server2", timeout=10)          # its home node serves it
        assert all(c["changed"] == 0 for c in play("present").values())

        counts = play("standby")
        assert (counts["server1"]["changed"], counts["server2"]["changed"]) == (0, 1)
        second.wait_for("server1", timeout=10)          # the peer serves it now
        assert agents[1].status()["groups"][1]["holder"] == "server1"
        assert all(c["changed"] == 0 for c in play("standby").values())

        counts = play("absent")
        assert (counts["server1"]["changed"], counts["server2"]["changed"]) == (1, 1)
        wait_until(lambda: not any(h.has_address(vip2) for h in lab.hosts.values()),
                   10, f"{vip2} to be released")
        assert all(c["changed"] == 0 for c in play("absent").values())
        for agent in agents:
            assert agent.host.read("/etc/ha.d/haresources") == f"server1 IPaddr::{lab.vip}/24/eth0 failback.sh\n"
        end = time.monotonic()
    finally:
        result = first.stop()
        if second is not None:
            second.stop()
    assert result.holders() == ["server1"]
    assert lost_while_served(result, end) == 0, f"the first VIP lost probes: gaps {result.gaps()}"
