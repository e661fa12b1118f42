"""The heartbeat_vip role with Debian's `heartbeat` engine, on a provisioned Ansible lab over ssh (issue 3).

The lab refuses pkill/killall/systemctl (reboot) inside its hosts, which Heartbeat's ResourceManager
would otherwise run against the real machine. The session's `switch_lab` pair (engine agent, provisioned
like `ansible_lab`) is switched to engine heartbeat once for this module and switched back at its end; the tests run in
order on it: the switch, rerun, --check --diff, a refused bad value (refused by the agent's parser
run on the controller: heartbeat hosts have no agent), then the primary's power loss. Two pairs in one
run: test_rename.py, whose lab has them.
"""
from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator

import pytest

from ansible_lab import CONFIG_FILES, SECRET, AnsibleLab, assert_ok, config_bytes, heartbeat_pids, recap

pytestmark = pytest.mark.timeout(900)

HEARTBEAT = ("-e", "heartbeat_vip_engine=heartbeat")


class Switched:
    def __init__(self, al: AnsibleLab, first: subprocess.CompletedProcess, seconds: float):
        self.al, self.lab, self.first, self.seconds = al, al.lab, first, seconds

    def playbook(self, *args: str) -> subprocess.CompletedProcess:
        return self.al.playbook(*HEARTBEAT, *args)


@pytest.fixture(scope="module")
def pair(switch_lab: AnsibleLab) -> Iterator[Switched]:
    assert_ok(switch_lab.first)
    started = time.monotonic()
    first = switch_lab.playbook(*HEARTBEAT)
    try:
        yield Switched(switch_lab, first, time.monotonic() - started)
    finally:
        # The way back: switching to the agent engine enables hbvip again (its K links turn into S
        # links), and the heal fails this module if that run does not converge.
        switch_lab.heal()


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
