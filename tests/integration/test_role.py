"""The heartbeat_vip role and site.yml against lab hosts over real ssh (issue 3).

The lab refuses pkill/killall/systemctl (reboot) inside its hosts, which Heartbeat's ResourceManager
would otherwise run against the real machine. One pair is provisioned once per module and the tests run in order on it: fresh run, rerun,
--check --diff, a refused bad value, then the primary's power loss. The two-pair run gets its own
four-host lab. Debian's heartbeat engine needs no agent, so it is what these tests drive.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from lab import Host, Lab

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "site.yml"
SECRET = "labsecret-0123"
CONFIG_FILES = {"ha.cf": 0o644, "haresources": 0o644, "authkeys": 0o600, "resource.d/failback.sh": 0o755}
# Short timers keep the tests quick; Heartbeat accepts milliseconds.
FAST_TIMERS = {
    "heartbeat_vip_keepalive_ms": 200,
    "heartbeat_vip_warntime_ms": 500,
    "heartbeat_vip_deadtime_ms": 1000,
    "heartbeat_vip_initdead_ms": 1000,
}


def pair_vars(lab: Lab, vip: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "heartbeat_vip_engine": "heartbeat",
        "heartbeat_vip_vip": {"address": vip or lab.vip, "prefix": 24},
        "heartbeat_vip_auth_secret": SECRET,
        **FAST_TIMERS,
        **extra,
    }


def playbook(lab: Lab, inventory: Path, *args: str) -> subprocess.CompletedProcess:
    return lab.run_controller(
        ["ansible-playbook", "-i", str(inventory), str(SITE), *args],
        check=False,
        timeout=240,
        env={"ANSIBLE_PIPELINING": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "8"},
    )


def recap(result: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host, e.g. {'server1': {'ok': 30, 'changed': 0, 'failed': 0, ...}}."""
    counts = {}
    for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", result.stdout, re.M):
        counts[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return counts


def heartbeat_pids(host: Host) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == "heartbeat" and host.owns_pid(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def config_bytes(host: Host) -> dict[str, bytes]:
    return {name: host.path(f"/etc/ha.d/{name}").read_bytes() for name in CONFIG_FILES}


def nest_under_hbvip_pairs(inventory: Path) -> None:
    """site.yml targets the group hbvip_pairs; make the lab's pair groups its children."""
    data = json.loads(inventory.read_text())
    data["all"]["children"] = {"hbvip_pairs": {"children": data["all"]["children"]}}
    inventory.write_text(json.dumps(data, indent=2))


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


class Provisioned:
    def __init__(self, lab: Lab, inventory: Path, first: subprocess.CompletedProcess, seconds: float):
        self.lab, self.inventory, self.first, self.seconds = lab, inventory, first, seconds


@pytest.fixture(scope="module")
def pair(lab_support: None) -> Iterator[Provisioned]:
    with Lab(prefix=f"rl{os.getpid()}p", net=None, hosts=("server1", "server2"), ssh=True) as lab:
        inventory = lab.write_inventory(lab.dir / "inventory.yml", group="hbvip_pairs", extra_vars=pair_vars(lab))
        started = time.monotonic()
        first = playbook(lab, inventory)
        yield Provisioned(lab, inventory, first, time.monotonic() - started)


def test_fresh_pair_serves_the_vip_with_identical_files_and_a_peer_only_port(pair: Provisioned) -> None:
    assert_ok(pair.first)
    print(f"fresh site.yml: {pair.seconds:.1f} s")
    lab = pair.lab
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=10)
    finally:
        probe.stop()
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
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


def test_rerun_changes_nothing(pair: Provisioned) -> None:
    started = time.monotonic()
    result = playbook(pair.lab, pair.inventory)
    print(f"rerun site.yml: {time.monotonic() - started:.1f} s")
    assert_ok(result)
    counts = recap(result)
    assert set(counts) == {"server1", "server2"}
    assert all(c["changed"] == 0 for c in counts.values()), counts


def test_check_diff_shows_a_changed_timer_and_writes_nothing(pair: Provisioned) -> None:
    s1 = pair.lab.hosts["server1"]
    before = config_bytes(s1)
    result = playbook(pair.lab, pair.inventory, "--check", "--diff", "-e", "heartbeat_vip_warntime_ms=600")
    assert_ok(result)
    assert re.search(r"^-warntime 500ms$", result.stdout, re.M)
    assert re.search(r"^\+warntime 600ms$", result.stdout, re.M)
    assert SECRET not in result.stdout
    assert config_bytes(s1) == before


def test_deadtime_not_above_twice_keepalive_fails_before_writing(pair: Provisioned) -> None:
    lab = pair.lab
    before = {h: config_bytes(host) for h, host in lab.hosts.items()}
    result = playbook(lab, pair.inventory, "-e", "heartbeat_vip_deadtime_ms=400")
    assert result.returncode != 0
    assert "deadtime > 2 x keepalive" in result.stdout
    assert {h: config_bytes(host) for h, host in lab.hosts.items()} == before
    assert f"{lab.vip}/24" in lab.hosts["server1"].addresses()


def test_primary_power_loss_moves_the_vip_to_the_backup(pair: Provisioned) -> None:
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
    assert moved - lost < 5


def test_two_pairs_in_one_run_each_serve_their_own_vip(lab_support: None) -> None:
    names = ("server1", "server2", "server3", "server4")
    with Lab(prefix=f"rl{os.getpid()}q", net=None, hosts=names, ssh=True) as lab:
        vips: Mapping[str, str] = {"pair_a": lab.vip, "pair_b": lab.addr(101)}
        inventory = lab.write_inventory(
            lab.dir / "inventory.yml",
            groups={"pair_a": ["server1", "server2"], "pair_b": ["server3", "server4"]},
            group_vars={g: pair_vars(lab, vip=v, heartbeat_vip_auth_secret=f"{SECRET}-{g}") for g, v in vips.items()},
        )
        nest_under_hbvip_pairs(inventory)
        result = playbook(lab, inventory)
        assert_ok(result)
        assert f"{vips['pair_a']}/24" in lab.hosts["server1"].addresses()
        assert f"{vips['pair_b']}/24" in lab.hosts["server3"].addresses()
        assert not {f"{v}/24" for v in vips.values()} & set(lab.hosts["server2"].addresses() + lab.hosts["server4"].addresses())
        assert lab.client is not None
        for vip in vips.values():
            lab.client.run(["ping", "-c", "1", "-W", "2", vip])
