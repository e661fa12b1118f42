"""The heartbeat_vip role on the session's shared Ansible lab, over real ssh: its `agent` engine first,
then a switch to Debian's `heartbeat` engine and back (issues 3 and 14).

Both parts use the session's `ansible_lab` (conftest.py), provisioned once with engine agent (after a
--check on the fresh hosts); this module is its only user, so under `--dist loadfile` one worker
provisions it once for both. The tests run in the order written, and that order matters: the agent
tests need the pair as provisioned, the heartbeat tests switch it away.

The agent engine: the controller builds the agent's wheel and ships it with pyroute2's; the hosts
install them offline into /opt/hbvip/venv and run `hbvip run` under the role's sysv init script (the
lab has no systemd). Each of these tests leaves the pair as it found it. The client probes the VIP
every 10 ms wherever it could blink.

The heartbeat engine, after them: the module-scoped fixture `pair` switches the same pair to engine
heartbeat once (site.yml with heartbeat_vip_engine=heartbeat), when the first heartbeat test asks for
it; the tests then run in order on it: the switch, rerun, --check --diff, a refused bad value (refused
by the agent's parser run on the controller: heartbeat hosts have no agent), then the primary's power
loss. The way back is the fixture's teardown at the module's end: `ansible_lab.heal()` powers both
hosts on and applies site.yml with the lab's own variables (engine agent) again, and fails the module
if that run does not converge. The lab refuses pkill/killall/systemctl (reboot) inside its hosts,
which Heartbeat's ResourceManager would otherwise run against the real machine.

The changes an operator makes later (a changed timer, resource and VIP, an agent upgrade, a power loss)
are test_role_changes.py's, on a pair of their own, so both run side by side. Two pairs in one run:
test_rename.py, whose lab has them.
"""
from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_lab import (
    CONFIG_FILES, SECRET, AnsibleLab, agent_pid, agent_status, assert_ok, changed_tasks, config_bytes, heartbeat_pids,
    recap, serving_probe,
)
from lab import Lab
from lab.probe import Probe, ProbeResult, agent_cmd, wait_ready

pytestmark = pytest.mark.timeout(900)

PORT = 5405
# Tasks a converged host reports ok: 10 of them over ssh (a subset of facts, one find, /etc/hosts and
# the name lookup, the haresources read, the firewall's two reads, the two engine services, one verify
# command), the rest local set_fact/assert (issue 14 saw ~57 tasks, 14 of them over ssh).
CONVERGED_TASKS_MAX = 32


def second_prober(lab: Lab, address: str, interval: float = 0.01) -> Probe:
    """Probe a VIP other than lab.vip; the responders of a running lab.probe() answer on every address."""
    assert lab.client is not None
    out = lab.dir / f"probe-{address}-{time.monotonic_ns()}.log"
    proc = lab.client.spawn(agent_cmd("probe", address, PORT, interval, out))
    wait_ready(out, proc, "second prober")
    return Probe(out, proc, [])


def hb_vip(al: AnsibleLab, collections: Path, args: str) -> subprocess.CompletedProcess:
    """`ansible hbvip_pairs -m hbvip.heartbeat.hb_vip -a ARGS` against the pair, from this checkout."""
    return al.lab.run_controller(
        ["ansible", "-i", str(al.inventory), "hbvip_pairs", "-m", "hbvip.heartbeat.hb_vip", "-a", args],
        check=False, timeout=120,
        env={"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_PIPELINING": "1", "ANSIBLE_NOCOLOR": "1"})


@pytest.fixture
def probe(ansible_lab: AnsibleLab) -> Iterator[Probe]:
    with serving_probe(ansible_lab.lab, PORT) as p:
        yield p


def test_fresh_agent_pair_forms_and_serves_the_vip_from_server1(ansible_lab: AnsibleLab) -> None:
    assert_ok(ansible_lab.first)
    print(f"fresh site.yml (agent): {ansible_lab.seconds:.1f} s")
    lab = ansible_lab.lab
    statuses = {name: agent_status(host) for name, host in lab.hosts.items()}
    for name, st in statuses.items():
        peer = "server2" if name == "server1" else "server1"
        assert st["node"] == name
        assert st["peer"]["name"] == peer and st["peer"]["state"] == "active", st["peer"]
    holders = {g["holder"] for st in statuses.values() for g in st["groups"]}
    assert holders == {"server1"}, statuses
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    for name, mode in CONFIG_FILES.items():
        for host in (s1, s2):
            assert host.path(f"/etc/ha.d/{name}").stat().st_mode & 0o7777 == mode, (host.name, name)
    assert config_bytes(s1) == config_bytes(s2)
    assert s1.path("/etc/init.d/hbvip").stat().st_mode & 0o7777 == 0o755


def test_check_mode_on_fresh_hosts_predicts_exactly_what_the_first_run_changes(ansible_lab: AnsibleLab) -> None:
    """Before the first run nothing is installed yet: the agent, its init script, the config, the nft
    table (written and loaded); check mode must still name every task the real run then changes."""
    assert ansible_lab.fresh_check is not None
    assert_ok(ansible_lab.fresh_check)
    assert_ok(ansible_lab.first)
    predicted, done = changed_tasks(ansible_lab.fresh_check), changed_tasks(ansible_lab.first)
    assert predicted == done, f"check mode predicted {predicted}\nthe run changed {done}"
    assert all(any(t.endswith(": Load the hbvip table") for t in tasks) for tasks in done.values()), done


def test_agent_refuses_deadtime_not_above_twice_keepalive_with_check_configs_line(ansible_lab: AnsibleLab) -> None:
    lab = ansible_lab.lab
    before = {h: config_bytes(host) for h, host in lab.hosts.items()}
    pids = {h: agent_pid(host) for h, host in lab.hosts.items()}
    # keepalive 200 < warntime 300 < deadtime 400: only the 2 x keepalive rule is broken.
    result = ansible_lab.playbook("-e", "heartbeat_vip_deadtime_ms=400", "-e", "heartbeat_vip_warntime_ms=300")
    assert result.returncode != 0
    assert re.search(r"/etc/ha\.d/ha\.cf:\d+: deadtime 0\.4s must be more than twice keepalive 0\.2s", result.stdout), \
        result.stdout[-4000:]
    assert {h: config_bytes(host) for h, host in lab.hosts.items()} == before
    assert {h: agent_pid(host) for h, host in lab.hosts.items()} == pids
    assert f"{lab.vip}/24" in lab.hosts["server1"].addresses()


def test_a_converged_rerun_and_check_change_nothing_and_keep_the_group_hb_vip_added(
        ansible_lab: AnsibleLab, probe: Probe, collections: Path) -> None:
    """The converged pair, with a group an operator added with hb_vip: `--check --diff` and a real rerun
    change nothing (that group included), run few tasks, rebuild no wheel, restart no agent and cost
    no probe on either VIP. Only `heartbeat_vip_haresources_exclusive` then removes the group."""
    lab = ansible_lab.lab
    vip2 = lab.addr(101)
    try:
        served_from, end, served = converged_reruns_with_a_second_group(ansible_lab, collections, vip2)
        first = probe.stop()
        assert first.gaps() == [] and first.holders() == ["server1"], first.gaps()
        lost = sum(1 for ts, host in served.samples if host is None and served_from <= ts <= end)
        assert lost == 0, [(round(a - served_from, 3), round(b - a, 3)) for a, b in served.gaps()]
        assert served.holder_at(end) == "server2"

        exclusive = ansible_lab.playbook("--diff", "-e", "heartbeat_vip_haresources_exclusive=true")
        assert_ok(exclusive)
        assert re.search(rf"^-server2 IPaddr::{re.escape(vip2)}/24/eth0 failback\.sh$", exclusive.stdout, re.M), \
            exclusive.stdout[-3000:]
        for host in lab.hosts.values():
            assert vip2 not in host.read("/etc/ha.d/haresources")
            assert [g["vips"] for g in agent_status(host)["groups"]] == [[lab.vip]]
    finally:
        if vip2 in lab.hosts["server1"].read("/etc/ha.d/haresources"):  # leave the pair as it was found
            hb_vip(ansible_lab, collections, f"address={vip2}/24 state=absent")


def converged_reruns_with_a_second_group(al: AnsibleLab, collections: Path, vip2: str) -> tuple[float, float, ProbeResult]:
    """hb_vip adds a group homed on server2, then site.yml --check --diff and a real rerun, asserted to
    change nothing; returns (from when, until when, the second VIP's probe) for the caller's loss count."""
    lab = al.lab
    second = second_prober(lab, vip2)
    try:
        added = hb_vip(al, collections, f"address={vip2}/24 interface=eth0 home_node=server2 resources=failback.sh")
        assert added.returncode == 0, added.stdout + added.stderr
        second.wait_for("server2", timeout=10)
        served_from = lab.now() + 0.5  # hb_vip's own reload settles; from here only site.yml runs
        time.sleep(0.5)
        files = {h: config_bytes(host) for h, host in lab.hosts.items()}
        pids = {h: agent_pid(host) for h, host in lab.hosts.items()}
        check = al.playbook("--check", "--diff")
        assert_ok(check)
        assert vip2 not in check.stdout.split("PLAY RECAP")[0]
        started = time.monotonic()
        rerun = al.playbook()
        print(f"converged rerun site.yml (agent): {time.monotonic() - started:.1f} s")
        assert_ok(rerun)
        for run in (check, rerun):
            counts = recap(run)
            assert set(counts) == {"server1", "server2"}
            assert all(c["changed"] == 0 for c in counts.values()), (counts, changed_tasks(run))
        assert all(c["ok"] <= CONVERGED_TASKS_MAX for c in recap(rerun).values()), recap(rerun)
        assert not re.search(r"^TASK \[[^]]*(Build the agent's wheel|Install the agent into)[^]]*\] \**\n(ok|changed)",
                             rerun.stdout, re.M), rerun.stdout
        assert {h: config_bytes(host) for h, host in lab.hosts.items()} == files
        assert {h: agent_pid(host) for h, host in lab.hosts.items()} == pids
        end = lab.now()
    finally:
        served = second.stop()
    return served_from, end, served


# The heartbeat engine: after the agent tests above, on the same pair (see the module's docstring).
HEARTBEAT = ("-e", "heartbeat_vip_engine=heartbeat")


class Switched:
    def __init__(self, al: AnsibleLab, first: subprocess.CompletedProcess, seconds: float):
        self.al, self.lab, self.first, self.seconds = al, al.lab, first, seconds

    def playbook(self, *args: str) -> subprocess.CompletedProcess:
        return self.al.playbook(*HEARTBEAT, *args)


@pytest.fixture(scope="module")
def pair(ansible_lab: AnsibleLab) -> Iterator[Switched]:
    assert_ok(ansible_lab.first)
    started = time.monotonic()
    first = ansible_lab.playbook(*HEARTBEAT)
    try:
        yield Switched(ansible_lab, first, time.monotonic() - started)
    finally:
        # The way back: switching to the agent engine enables hbvip again (its K links turn into S
        # links), and the heal fails this module if that run does not converge.
        ansible_lab.heal()


def test_switch_to_heartbeat_serves_the_vip_with_identical_files_and_a_peer_only_port(pair: Switched) -> None:
    assert_ok(pair.first)
    print(f"site.yml, engine agent -> heartbeat: {pair.seconds:.1f} s")
    lab = pair.lab
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=10)
    finally:
        probe.stop()
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    assert heartbeat_pids(s1) and heartbeat_pids(s2)
    for name, mode in CONFIG_FILES.items():
        for host in (s1, s2):
            assert host.path(f"/etc/ha.d/{name}").stat().st_mode & 0o7777 == mode, (host.name, name)
    assert config_bytes(s1) == config_bytes(s2)
    assert f"1 sha1 {SECRET}" in s1.read("/etc/ha.d/authkeys")
    for host, peer in ((s1, s2), (s2, s1)):
        rules = host.run(["nft", "list", "table", "inet", "hbvip"]).stdout
        accepts = re.findall(r"^\s*(.*)udp dport 694 accept$", rules, re.M)
        assert sorted(a.strip() for a in accepts) == sorted(['iifname "lo"', f"ip saddr {peer.address}"])
        assert re.search(r"^\s*udp dport 694 drop$", rules, re.M)


def test_rerun_changes_nothing(pair: Switched) -> None:
    """Also after the switch: the agent's init script, disabled by it (K links), stays disabled, and
    heartbeat's links, which the machine's package left as they were, read as enabled."""
    result = pair.playbook()
    assert_ok(result)
    counts = recap(result)
    assert set(counts) == {"server1", "server2"}
    assert all(c["changed"] == 0 for c in counts.values()), counts
    for host in pair.lab.hosts.values():
        links = sorted(p.name for p in host.path("/etc/rc2.d").iterdir() if p.name[3:] in ("hbvip", "heartbeat"))
        assert [name[0] + name[3:] for name in links] == ["Khbvip", "Sheartbeat"], (host.name, links)


def test_check_diff_shows_a_changed_timer_and_writes_nothing(pair: Switched) -> None:
    s1 = pair.lab.hosts["server1"]
    before = config_bytes(s1)
    result = pair.playbook("--check", "--diff", "-e", "heartbeat_vip_warntime_ms=600")
    assert_ok(result)
    assert re.search(r"^-warntime 500ms$", result.stdout, re.M)
    assert re.search(r"^\+warntime 600ms$", result.stdout, re.M)
    assert SECRET not in result.stdout
    assert config_bytes(s1) == before


def test_deadtime_not_above_twice_keepalive_is_refused_by_the_agents_parser_before_writing(pair: Switched) -> None:
    lab = pair.lab
    before = {h: config_bytes(host) for h, host in lab.hosts.items()}
    result = pair.playbook("-e", "heartbeat_vip_deadtime_ms=400")
    assert result.returncode != 0
    assert re.search(r"/etc/ha\.d/ha\.cf:\d+: deadtime 0\.4s must be more than twice keepalive 0\.2s", result.stdout), \
        result.stdout[-4000:]
    assert {h: config_bytes(host) for h, host in lab.hosts.items()} == before
    assert f"{lab.vip}/24" in lab.hosts["server1"].addresses()


def test_primary_power_loss_moves_the_vip_to_the_backup(pair: Switched) -> None:
    lab = pair.lab
    s1 = lab.hosts["server1"]
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=10)
        lost = lab.now()
        s1.power_loss(heartbeat_pids(s1))
        moved = probe.wait_for("server2", timeout=10, after=lost)
    finally:
        probe.stop()
        s1.power_on()
    assert moved - lost < 5
