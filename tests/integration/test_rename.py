"""playbooks/rename_node.yml against lab pairs over real ssh (issue 6).

The agent pair is renamed server1 -> db1, server2 -> db2 one node at a time while the client probes the
VIP every 10 ms; the longest gap is held to two planned handoffs measured on the same pair just before.
A pair running Debian's heartbeat is refused without heartbeat_vip_rename_allow_outage and renamed (with
the outage the option allows) with it. The probe's responders answer with the lab's host names
(server1/server2), fixed when they start, so holders are read in those names.
"""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from lab import Host, Lab
from test_role import FAST_TIMERS, REPO, SECRET, assert_ok, heartbeat_pids, pair_vars
from test_role_agent import agent_status, config_bytes, playbook as site, wheelhouse  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(1200)

RENAME = REPO / "playbooks" / "rename_node.yml"
NEW_NAMES = {"server1": "db1", "server2": "db2"}
HBVIP = "/opt/hbvip/venv/bin/hbvip"


def rename(lab: Lab, inventory: Path, mapping: Mapping[str, str], **extra: object) -> subprocess.CompletedProcess:
    """Run the rename playbook from the repo; a hang comes back as a failed result with its output."""
    cmd = ["ansible-playbook", "-i", str(inventory), str(RENAME),
           "-e", json.dumps({"heartbeat_vip_rename": dict(mapping), **extra})]
    try:
        return lab.run_controller(cmd, check=False, timeout=500,
                                  env={"ANSIBLE_PIPELINING": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "8"})
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return subprocess.CompletedProcess(cmd, -9, out + "\n[timed out]", "")


def hostname(host: Host) -> str:
    return host.run(["uname", "-n"]).stdout.strip()


def uuid(host: Host) -> bytes:
    return host.path("/var/lib/heartbeat/hb_uuid").read_bytes()


def measure_handoff(lab: Lab) -> float:
    """The longest client gap of one planned handoff each way (standby to server2, takeover back)."""
    s1 = lab.hosts["server1"]
    probe = lab.probe(interval=0.01)
    try:
        probe.wait_for("server1", timeout=15)
        s1.run([HBVIP, "standby", "all"], timeout=60)
        probe.wait_for("server2", timeout=15)
        s1.run([HBVIP, "takeover", "local"], timeout=60)
        probe.wait_for("server1", timeout=15)
    finally:
        result = probe.stop()
    assert result.holders()[-1] == "server1", result.holders()
    return result.longest_gap()


def test_agent_pair_is_renamed_one_node_at_a_time_without_losing_the_vip(
    lab_factory: Callable[..., Lab], wheelhouse: Path,  # noqa: F811 (the imported fixture)
) -> None:
    lab = lab_factory(ssh=True)
    extra = {
        "heartbeat_vip_engine": "agent",
        "heartbeat_vip_vip": {"address": lab.vip, "prefix": 24},
        "heartbeat_vip_auth_secret": SECRET,
        "heartbeat_vip_agent_wheel_find_links": str(wheelhouse),
        **FAST_TIMERS,
    }
    inventory = lab.write_inventory(lab.dir / "inventory.yml", group="hbvip_pairs", extra_vars=extra)
    assert_ok(site(lab, inventory))
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    handoff = measure_handoff(lab)
    uuids = {name: uuid(host) for name, host in lab.hosts.items()}

    probe = lab.probe(interval=0.01)
    try:
        probe.wait_for("server1", timeout=15)
        started = time.monotonic()
        result = rename(lab, inventory, NEW_NAMES)
        took = time.monotonic() - started
        probe.wait_for("server1", timeout=15)
    finally:
        seen = probe.stop()
    assert_ok(result)
    longest = seen.longest_gap()
    print(f"rename_node.yml (agent): {took:.1f} s; one planned handoff: {handoff * 1000:.0f} ms; "
          f"longest client gap during the rename: {longest * 1000:.0f} ms; gaps: "
          f"{[round((b - a) * 1000) for a, b in seen.gaps()]} ms; holders {seen.holders()}")

    for name, host in lab.hosts.items():
        new, peer = NEW_NAMES[name], NEW_NAMES["server2" if name == "server1" else "server1"]
        assert hostname(host) == new
        assert host.read("/etc/hostname") == new + "\n"
        status = agent_status(host)
        assert (status["node"], status["peer"]["name"], status["peer"]["state"]) == (new, peer, "active"), status
        assert [(g["home_node"], g["holder"]) for g in status["groups"]] == [("db1", "db1")], status["groups"]
        fresh = uuid(host)
        assert len(fresh) == 16 and fresh != uuids[name], name
    assert config_bytes(s1) == config_bytes(s2)
    assert "\nnode db1 db2\n" in s1.read("/etc/ha.d/ha.cf")
    assert s1.read("/etc/ha.d/haresources").splitlines()[-1].startswith(f"db1 IPaddr::{lab.vip}/24/eth0")
    assert f"{lab.vip}/24" in s1.addresses() and f"{lab.vip}/24" not in s2.addresses()
    assert seen.holders()[-1] == "server1"
    assert longest <= 2 * handoff + 0.02, (longest, handoff)


def test_heartbeat_pair_rename_is_refused_without_opt_in_and_done_with_an_outage_with_it(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(ssh=True)
    inventory = lab.write_inventory(lab.dir / "inventory.yml", group="hbvip_pairs", extra_vars=pair_vars(lab))
    assert_ok(site(lab, inventory))
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    pids = {name: heartbeat_pids(host) for name, host in lab.hosts.items()}
    before = config_bytes(s1)

    refused = rename(lab, inventory, NEW_NAMES)
    assert refused.returncode != 0
    assert "Refusing to rename nodes of a pair running Debian's heartbeat" in refused.stdout, refused.stdout[-3000:]
    assert "heartbeat_vip_rename_allow_outage" in refused.stdout
    assert [hostname(s1), hostname(s2)] == ["server1", "server2"]
    assert {name: heartbeat_pids(host) for name, host in lab.hosts.items()} == pids
    assert config_bytes(s1) == before

    uuids = {name: uuid(host) for name, host in lab.hosts.items()}
    probe = lab.probe(interval=0.01)
    try:
        probe.wait_for("server1", timeout=15)
        started = time.monotonic()
        done = rename(lab, inventory, NEW_NAMES, heartbeat_vip_rename_allow_outage=True)
        took = time.monotonic() - started
        back = probe.wait_for("server1", timeout=30)
    finally:
        seen = probe.stop()
    assert_ok(done)
    print(f"rename_node.yml (heartbeat, outage allowed): {took:.1f} s; VIP down for "
          f"{seen.longest_gap():.1f} s; back at +{back - started:.1f} s")
    assert seen.gaps(), "the VIP should have been down while both nodes restarted"
    assert [hostname(s1), hostname(s2)] == ["db1", "db2"]
    assert all(uuid(host) != uuids[name] for name, host in lab.hosts.items())
    for host in (s1, s2):
        assert host.run(["cl_status", "nodestatus", "db2" if host is s1 else "db1"]).stdout.strip() == "active"
    assert config_bytes(s1) == config_bytes(s2)
    assert "\nnode db1 db2\n" in s1.read("/etc/ha.d/ha.cf")
    assert f"{lab.vip}/24" in s1.addresses() and f"{lab.vip}/24" not in s2.addresses()
