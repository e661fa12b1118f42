"""The heartbeat_vip role's `agent` engine against lab hosts over real ssh (issue 3).

The controller builds the agent's wheel and ships it with pyroute2's; the hosts install them offline
into /opt/hbvip/venv and run `hbvip run` under the role's sysv init script (the lab has no systemd).
The controller lives in the lab's client namespace, which has no route to a package index, so the
test fetches the build's wheels first (in the root namespace) and hands the role that directory.
One pair is provisioned per module and the tests run in order on it, as in test_role.py.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Host, Lab
from test_role import FAST_TIMERS, SITE, SECRET, Provisioned, assert_ok, recap

pytestmark = pytest.mark.timeout(600)

HBVIP = "/opt/hbvip/venv/bin/hbvip"
AGENT_FILES = {"ha.cf": 0o644, "haresources": 0o644, "authkeys": 0o600, "resource.d/failback.sh": 0o755}


@pytest.fixture(scope="module")
def agent_pair(lab_support: None, wheelhouse: Path) -> Iterator[Provisioned]:
    with Lab(prefix=f"ra{os.getpid()}p", net=None, hosts=("server1", "server2"), ssh=True) as lab:
        extra = {
            "heartbeat_vip_engine": "agent",
            "heartbeat_vip_vip": {"address": lab.vip, "prefix": 24},
            "heartbeat_vip_auth_secret": SECRET,
            "heartbeat_vip_agent_wheel_find_links": str(wheelhouse),
            **FAST_TIMERS,
        }
        inventory = lab.write_inventory(lab.dir / "inventory.yml", group="hbvip_pairs", extra_vars=extra)
        started = time.monotonic()
        first = playbook(lab, inventory)
        yield Provisioned(lab, inventory, first, time.monotonic() - started)


def playbook(lab: Lab, inventory: Path, *args: str) -> subprocess.CompletedProcess:
    """Run site.yml; a run that hangs comes back as a failed result with its output, not a bare timeout."""
    cmd = ["ansible-playbook", "-i", str(inventory), str(SITE), *args]
    try:
        return lab.run_controller(
            cmd, check=False, timeout=400,
            env={"ANSIBLE_PIPELINING": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "8"},
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return subprocess.CompletedProcess(cmd, -9, out + "\n[timed out]", "")


def agent_status(host: Host) -> dict:
    result = host.run([HBVIP, "status", "--json"], check=False)
    assert result.returncode == 0, (host.name, result.stdout, result.stderr)
    return json.loads(result.stdout)


def agent_pid(host: Host) -> int:
    return int(host.read("/run/hbvip.pid").strip())


def config_bytes(host: Host) -> dict[str, bytes]:
    return {name: host.path(f"/etc/ha.d/{name}").read_bytes() for name in AGENT_FILES}


def test_fresh_agent_pair_forms_and_serves_the_vip_from_server1(agent_pair: Provisioned) -> None:
    assert_ok(agent_pair.first)
    print(f"fresh site.yml (agent): {agent_pair.seconds:.1f} s")
    lab = agent_pair.lab
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=15)
    finally:
        probe.stop()
    statuses = {name: agent_status(host) for name, host in lab.hosts.items()}
    for name, st in statuses.items():
        peer = "server2" if name == "server1" else "server1"
        assert st["node"] == name
        assert st["peer"]["name"] == peer and st["peer"]["state"] == "active", st["peer"]
    holders = {g["holder"] for st in statuses.values() for g in st["groups"]}
    assert holders == {"server1"}, statuses
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    for name, mode in AGENT_FILES.items():
        for host in (s1, s2):
            assert host.path(f"/etc/ha.d/{name}").stat().st_mode & 0o7777 == mode, (host.name, name)
    assert config_bytes(s1) == config_bytes(s2)
    assert s1.path("/etc/init.d/hbvip").stat().st_mode & 0o7777 == 0o755


def test_agent_rerun_changes_nothing(agent_pair: Provisioned) -> None:
    started = time.monotonic()
    result = playbook(agent_pair.lab, agent_pair.inventory)
    print(f"rerun site.yml (agent): {time.monotonic() - started:.1f} s")
    assert_ok(result)
    counts = recap(result)
    assert set(counts) >= {"server1", "server2"}
    assert all(c["changed"] == 0 for c in counts.values()), counts


def test_agent_refuses_deadtime_not_above_twice_keepalive_with_check_configs_line(agent_pair: Provisioned) -> None:
    lab = agent_pair.lab
    before = {h: config_bytes(host) for h, host in lab.hosts.items()}
    pids = {h: agent_pid(host) for h, host in lab.hosts.items()}
    # keepalive 200 < warntime 300 < deadtime 400: only the 2 x keepalive rule is broken.
    result = playbook(lab, agent_pair.inventory, "-e", "heartbeat_vip_deadtime_ms=400", "-e", "heartbeat_vip_warntime_ms=300")
    assert result.returncode != 0
    assert re.search(r"/etc/ha\.d/ha\.cf:\d+: deadtime 0\.4s must be more than twice keepalive 0\.2s", result.stdout), \
        result.stdout[-4000:]
    assert {h: config_bytes(host) for h, host in lab.hosts.items()} == before
    assert {h: agent_pid(host) for h, host in lab.hosts.items()} == pids
    assert f"{lab.vip}/24" in lab.hosts["server1"].addresses()


def test_agent_primary_power_loss_moves_the_vip_to_the_backup(agent_pair: Provisioned) -> None:
    lab = agent_pair.lab
    s1 = lab.hosts["server1"]
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=10)
        lost = lab.now()
        s1.power_loss([agent_pid(s1)])
        moved = probe.wait_for("server2", timeout=10, after=lost)
    finally:
        probe.stop()
    assert moved - lost < 5
    st = agent_status(lab.hosts["server2"])
    assert st["peer"]["state"] == "dead"
    assert {g["holder"] for g in st["groups"]} == {"server2"}
