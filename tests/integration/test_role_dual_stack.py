"""The heartbeat_vip role on a dual-stack pair with two heartbeat paths and a service check (issues 18, 19).

A lab of its own (second_network: eth0 dual-stack on one bridge, eth1 IPv6 on a second one, as a
dedicated heartbeat cable), provisioned over real ssh by site.yml with role variables only: an IPv4 and
an IPv6 VIP in one group, heartbeats on eth0 (ucast) and eth1 (ucast6), a check declared in
heartbeat_vip_checks. What is checked is what an operator sees: the IPv6 VIP answering from the holder,
the nftables table, `hbvip status --json`, the PLAY RECAP of a rerun and of --check.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_lab import FAST_TIMERS, SECRET, agent_status, assert_ok, changed_tasks, playbook, recap
from lab import Lab
from pair import wait_until

pytestmark = pytest.mark.timeout(900)

#: The check the role declares: healthy while /etc/ha.d/maintenance does not exist.
MAINTENANCE = "/etc/ha.d/maintenance"


class DualLab:
    """The provisioned lab: `first` is the provisioning run (a fresh build of the agent takes about 390 s
    on a loaded 2-core machine, past the 400 s AnsibleLab allows, hence a class of its own)."""

    def __init__(self, lab: Lab, inventory: Path, variables: dict[str, object]) -> None:
        self.lab, self.inventory, self.vars = lab, inventory, variables
        started = time.monotonic()
        self.first = self.playbook()
        self.seconds = time.monotonic() - started

    def playbook(self, *args: str) -> subprocess.CompletedProcess:
        return playbook(self.lab, self.inventory, *args, timeout=900)


@pytest.fixture(scope="module")
def dual(lab_support: None, wheelhouse: Path) -> Iterator[DualLab]:
    with Lab(prefix=f"ds{os.getpid()}", net=None, hosts=("server1", "server2"), ssh=True, second_network=True) as lab:
        variables: dict[str, object] = {
            "heartbeat_vip_engine": "agent",
            "heartbeat_vip_vip": {"address": lab.vip, "prefix": 24},
            "heartbeat_vip_extra_vips": [{"address": lab.vip6, "prefix": 64}],
            "heartbeat_vip_heartbeat_interfaces": [{"interface": "eth0"}, {"interface": "eth1"}],
            "heartbeat_vip_checks": [{"name": "service", "command": f"test ! -e {MAINTENANCE}",
                                      "interval": "200ms", "fall": 2, "rise": 2}],
            "heartbeat_vip_hbvip_settings": {"garp_count": 3},
            "heartbeat_vip_auth_secret": SECRET,
            "heartbeat_vip_agent_wheel_find_links": str(wheelhouse),
            **FAST_TIMERS,
        }
        inventory = lab.write_inventory(lab.dir / "inventory.yml", group="hbvip_pairs", extra_vars=variables)
        yield DualLab(lab, inventory, variables)


def full6(address: str) -> str:
    """fd99:9::100 -> fd99:9:0:0:0:0:0:100."""
    return ":".join(f"{int(h, 16):x}" for h in ipaddress.IPv6Address(address).exploded.split(":"))


def test_the_role_writes_both_paths_both_vips_and_the_check_identically_on_both_nodes(dual: DualLab) -> None:
    assert_ok(dual.first)
    print(f"fresh site.yml (dual-stack, two paths): {dual.seconds:.1f} s")
    lab = dual.lab
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    ha_cf = s1.read("/etc/ha.d/ha.cf")
    media = [line for line in ha_cf.splitlines() if line.startswith("ucast")]
    assert media == [f"ucast eth0 {lab.addr(1)}", f"ucast eth0 {lab.addr(2)}",
                     f"ucast6 eth1 {lab.addr6_second(1)}", f"ucast6 eth1 {lab.addr6_second(2)}"]
    group = [line for line in s1.read("/etc/ha.d/haresources").splitlines() if line and not line.startswith("#")]
    # the IPv6 VIP written out in full, as Heartbeat 3.0.6 needs it (it splits arguments at every `::`)
    assert group == [f"server1 IPaddr::{lab.vip}/24/eth0 IPv6addr::{full6(lab.vip6)}/64/eth0 failback.sh"]
    cf = s1.read("/etc/ha.d/hbvip.cf")
    assert "garp_count 3\n" in cf
    assert (f"check service command 'test ! -e {MAINTENANCE}' interval 200ms fall 2 rise 2 "
            f"group IPaddr::{lab.vip}/24/eth0\n") in cf
    for name in ("ha.cf", "haresources", "hbvip.cf"):
        assert s1.read(f"/etc/ha.d/{name}") == s2.read(f"/etc/ha.d/{name}"), name
    assert s1.path("/etc/ha.d/hbvip.cf").stat().st_mode & 0o777 == 0o600


def test_the_ipv6_vip_answers_from_the_holder_and_both_paths_are_up(dual: DualLab) -> None:
    lab = dual.lab
    assert lab.client is not None
    ping = lab.client.run(["ping", "-6", "-c", "1", "-W", "2", lab.vip6], check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert lab.client_neigh(lab.vip6) == lab.hosts["server1"].mac
    for name, host in lab.hosts.items():
        status = wait_until(lambda h=host: (st := agent_status(h)) and all(p["up"] for p in st["paths"]) and st,
                            10, f"both paths up on {name}")
        assert sorted(p["interface"] for p in status["paths"]) == ["eth0", "eth1"]
        assert status["groups"][0]["vips"] == [lab.vip, lab.vip6]


def test_nftables_accepts_the_heartbeat_port_from_the_peer_in_both_families(dual: DualLab) -> None:
    lab = dual.lab
    for i, (name, host) in enumerate(lab.hosts.items(), start=1):
        peer = 3 - i
        table = host.run(["nft", "list", "table", "inet", "hbvip"]).stdout
        rules = [" ".join(line.split()) for line in table.splitlines()]
        assert f"ip saddr {lab.addr(peer)} udp dport 694 accept" in rules, (name, table)
        assert f"ip6 saddr {lab.addr6_second(peer)} udp dport 694 accept" in rules, (name, table)
        assert rules.index("udp dport 694 drop") > rules.index(f"ip6 saddr {lab.addr6_second(peer)} udp dport 694 accept")


def test_the_declared_check_shows_in_status_and_its_failure_moves_both_vips(dual: DualLab) -> None:
    lab = dual.lab
    s1 = lab.hosts["server1"]
    for host in lab.hosts.values():
        health = agent_status(host)["health"]
        assert [(p["kind"], p["name"], p["healthy"]) for p in health] == [("check", "service", True)], health
        assert health[0]["groups"] == [f"IPaddr::{lab.vip}/24/eth0"]
    s1.write(MAINTENANCE, "")
    try:
        wait_until(lambda: agent_status(lab.hosts["server2"])["groups"][0]["holder"] == "server2", 10,
                   "server2 to take the group after server1's check failed")
        st1 = agent_status(s1)
        assert st1["groups"][0]["eligible"] is False and st1["health"][0]["healthy"] is False
        assert lab.client is not None
        lab.client.run(["ping", "-6", "-c", "1", "-W", "2", lab.vip6])
        assert lab.client_neigh(lab.vip6) == lab.hosts["server2"].mac
    finally:
        s1.run(["rm", "-f", MAINTENANCE])
    wait_until(lambda: agent_status(s1)["groups"][0]["holder"] == "server1", 15, "failback to server1 after rise")


def test_a_check_hb_vip_declared_for_its_group_survives_the_role(dual: DualLab, collections: Path) -> None:
    """hb_vip adds an IPv6 VIP of its own (Heartbeat's IPv6addr) with a check; the role keeps both, and a
    rerun and --check --diff on the converged pair change nothing."""
    lab = dual.lab
    vip6 = lab.vip6.replace("::100", "::101")
    args = {"address": f"{vip6}/64", "interface": "eth0", "home_node": "server2", "resources": ["failback.sh"],
            "checks": [{"name": "db", "command": "true", "fall": 3}]}

    def hb_vip(**extra: object) -> subprocess.CompletedProcess:
        return lab.run_controller(
            ["ansible", "-i", str(dual.inventory), "hbvip_pairs", "-m", "hbvip.heartbeat.hb_vip",
             "-a", json.dumps({**args, **extra})],
            check=False, timeout=300,
            env={"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_PIPELINING": "1", "ANSIBLE_NOCOLOR": "1"})

    added = hb_vip()
    assert added.returncode == 0 and added.stdout.count("CHANGED") == 2, added.stdout + added.stderr
    assert "when it restarts" not in added.stdout + added.stderr     # no warning: the reload applies the check
    wait_until(lambda: all("db" in [c["name"] for c in agent_status(h)["health"]] for h in lab.hosts.values()),
               10, "the reloaded agents to run the check hb_vip added")
    line = f"check db command true fall 3 group IPv6addr::{full6(vip6)}/64/eth0"
    try:
        assert all(line in h.read("/etc/ha.d/hbvip.cf").splitlines() for h in lab.hosts.values())
        assert all(f"server2 IPv6addr::{full6(vip6)}/64/eth0 failback.sh" in h.read("/etc/ha.d/haresources")
                   for h in lab.hosts.values())
        wait_until(lambda: lab.hosts["server2"].has_address(vip6), 10,
                   "server2 to serve the IPv6 VIP hb_vip added")
        again = hb_vip()
        assert again.returncode == 0 and "CHANGED" not in again.stdout, again.stdout
        # The converged pair with hb_vip's group: a rerun and --check --diff change nothing, that group's
        # haresources line and check included.
        for run_args in ((), ("--check", "--diff")):
            rerun = dual.playbook(*run_args)
            assert_ok(rerun)
            counts = recap(rerun)
            assert set(counts) == {"server1", "server2"}
            assert all(c["changed"] == 0 for c in counts.values()), (run_args, counts, changed_tasks(rerun))
        assert all(line in h.read("/etc/ha.d/hbvip.cf").splitlines() for h in lab.hosts.values())
    finally:
        gone = hb_vip(state="absent")
        assert gone.returncode == 0, gone.stdout
    assert all(not re.search(r"^check db ", h.read("/etc/ha.d/hbvip.cf"), re.M) for h in lab.hosts.values())
    wait_until(lambda: not lab.hosts["server2"].has_address(vip6), 10,
               "server2 to drop the IPv6 VIP")


def agent_pids(lab: Lab) -> dict[str, str]:
    return {name: h.read("/run/hbvip.pid").strip() for name, h in lab.hosts.items()}


def test_a_changed_check_is_applied_by_reload_and_shows_in_status(dual: DualLab) -> None:
    """A run that renames the check reloads the agents (no restart: same pids), the new check is what
    `hbvip status` shows, and the VIP stays on server1 without a probe lost. The module's last test: it
    leaves the renamed check in place (the lab goes when the module ends)."""
    lab = dual.lab
    checks = [{**check, "name": "service_v2"} for check in dual.vars["heartbeat_vip_checks"]]  # type: ignore[attr-defined]
    inventory = lab.write_inventory(dual.inventory.with_name("inventory-renamed-check.yml"), group="hbvip_pairs",
                                    extra_vars={**dual.vars, "heartbeat_vip_checks": checks})
    pids = agent_pids(lab)
    probe = lab.probe(target=lab.vip6)
    try:
        probe.wait_for("server1", timeout=15)
        predicted = playbook(lab, inventory, "--check", "--diff", timeout=900)
        assert_ok(predicted)
        result = playbook(lab, inventory, timeout=900)
        assert_ok(result)
        changed = changed_tasks(result)
        assert changed == changed_tasks(predicted), (changed, changed_tasks(predicted))   # check mode predicts it
        assert re.findall(r"^\+\+\+ after: (\S+)$", predicted.stdout, re.M) == 2 * ["/etc/ha.d/hbvip.cf"]
        assert all(any(t.endswith(" : Write the pair's other config files as one set") for t in tasks)
                   and any("Reload the engine's config" in t for t in tasks)
                   and not any("Restart" in t for t in tasks) for tasks in changed.values()), changed
        for host in lab.hosts.values():
            wait_until(lambda h=host: [p["name"] for p in agent_status(h)["health"]] == ["service_v2"], 10,
                       f"{host.name} to run the renamed check")
            assert "check service_v2 added" in host.read("/var/log/ha-log")
            assert "check service removed" in host.read("/var/log/ha-log")
        assert agent_pids(lab) == pids
        assert agent_status(lab.hosts["server1"])["groups"][0]["holder"] == "server1"
        outcome = probe.stop()
        print(f"\nchanged check applied by reload: IPv6 probe gaps {outcome.gaps()}")
        assert outcome.holders() == ["server1"] and outcome.gaps() == [], (outcome.holders(), outcome.gaps())
    finally:
        probe.stop()
