"""Two pairs provisioned by one site.yml run, then playbooks/rename_node.yml on each (issues 3 and 6).

One four-host lab, one inventory with two pairs under hbvip_pairs, as an operator with several pairs
has: pair_a (server1, server2) runs the agent with the lab's VIP, pair_b (server3, server4) Debian's
heartbeat with a VIP of its own and a secret of its own; one site.yml run provisions both.
The agent pair is renamed server1 -> db1, server2 -> db2 one node at a time while the client probes the
VIP every 10 ms; the longest gap is held to two planned handoffs measured on the same pair just before.
The heartbeat pair is refused without heartbeat_vip_rename_allow_outage and renamed (with the outage the
option allows) with it, that run as hbvip.heartbeat.rename_node from a collections path that holds this
checkout. Each rename names its pair with heartbeat_vip_rename_hosts. The probe's responders answer with
the lab's host names (server1..server4), fixed when they start, so holders are read in those names.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import Host, Lab
from ansible_lab import (
    HBVIP, REPO, SECRET, agent_status, assert_ok, config_bytes, heartbeat_pids, pair_vars, playbook as site, recap,
)

pytestmark = pytest.mark.timeout(1200)

RENAME = REPO / "playbooks" / "rename_node.yml"
NEW_NAMES = {"server1": "db1", "server2": "db2", "server3": "db3", "server4": "db4"}


@dataclass
class Pair:
    """One of the lab's two pairs: its hosts (by lab name), its VIP and its inventory group."""

    lab: Lab
    inventory: Path
    group: str
    names: tuple[str, str]
    vip: str

    @property
    def hosts(self) -> dict[str, Host]:
        return {name: self.lab.hosts[name] for name in self.names}


def installed_collection(lab: Lab) -> dict[str, str]:
    """Environment that makes this checkout the installed collection hbvip.heartbeat (a symlink in a
    collections path of the lab's own), as `ansible-galaxy collection install` would lay it out."""
    root = lab.dir / "collections"
    (root / "ansible_collections" / "hbvip").mkdir(parents=True, exist_ok=True)
    link = root / "ansible_collections" / "hbvip" / "heartbeat"
    if not link.is_symlink():
        link.symlink_to(REPO)
    return {"ANSIBLE_COLLECTIONS_PATH": str(root)}


def rename(pair: Pair, *flags: str, fqcn: bool = False, **extra: object) -> subprocess.CompletedProcess:
    """Rename the pair's nodes (NEW_NAMES) with the rename playbook from the repo (or as
    hbvip.heartbeat.rename_node); a hang comes back as a failed result with its output."""
    lab = pair.lab
    mapping: Mapping[str, str] = {name: NEW_NAMES[name] for name in pair.names}
    cmd = ["ansible-playbook", "-i", str(pair.inventory), "hbvip.heartbeat.rename_node" if fqcn else str(RENAME),
           *flags, "-e", json.dumps({"heartbeat_vip_rename": dict(mapping), "heartbeat_vip_rename_hosts": pair.group,
                                     **extra})]
    env = {"ANSIBLE_PIPELINING": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "8",
           **(installed_collection(lab) if fqcn else {})}
    try:
        return lab.run_controller(cmd, check=False, timeout=500, env=env)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return subprocess.CompletedProcess(cmd, -9, out + "\n[timed out]", "")


@pytest.fixture(scope="module")
def site_run(lab_support: None, wheelhouse: Path) -> Iterator[tuple[subprocess.CompletedProcess, dict[str, Pair]]]:  # noqa: F811 (fixture)
    """The four-host lab and the one site.yml run that provisioned both pairs: (its result, the pairs by
    engine). The rename tests need it to have succeeded; the first test asserts what it did."""
    with Lab(prefix=f"rn{os.getpid()}", net=None, hosts=("server1", "server2", "server3", "server4"), ssh=True) as lab:
        groups = {"pair_a": ("server1", "server2"), "pair_b": ("server3", "server4")}
        vips = {"pair_a": lab.vip, "pair_b": lab.addr(101)}
        engines = {"pair_a": "agent", "pair_b": "heartbeat"}
        inventory = lab.write_inventory(
            lab.dir / "inventory.yml", groups={g: list(names) for g, names in groups.items()},
            group_vars={g: pair_vars(lab, vip=vips[g], heartbeat_vip_engine=engines[g],
                                     heartbeat_vip_auth_secret=f"{SECRET}-{g}",
                                     heartbeat_vip_agent_wheel_find_links=str(wheelhouse)) for g in groups},
        )
        data = json.loads(inventory.read_text())       # site.yml targets hbvip_pairs: the pairs are its children
        data["all"]["children"] = {"hbvip_pairs": {"children": data["all"]["children"]}}
        inventory.write_text(json.dumps(data, indent=2))
        started = time.monotonic()
        result = site(lab, inventory, timeout=900)
        print(f"site.yml, two pairs in one run: {time.monotonic() - started:.1f} s")
        yield result, {engines[g]: Pair(lab, inventory, g, names, vips[g]) for g, names in groups.items()}


@pytest.fixture
def pairs(site_run: tuple[subprocess.CompletedProcess, dict[str, Pair]]) -> dict[str, Pair]:
    assert_ok(site_run[0])
    return site_run[1]


def test_two_pairs_in_one_run_each_serve_their_own_vip(site_run: tuple[subprocess.CompletedProcess, dict[str, Pair]]) -> None:
    result, by_engine = site_run
    assert_ok(result)
    lab = by_engine["agent"].lab
    assert set(recap(result)) == {"server1", "server2", "server3", "server4"}
    for pair in by_engine.values():
        first, second = pair.hosts.values()
        assert f"{pair.vip}/24" in first.addresses(), (pair.group, first.addresses())
        assert f"{pair.vip}/24" not in second.addresses(), (pair.group, second.addresses())
        others = [h for name, h in lab.hosts.items() if name not in pair.names]
        assert not any(f"{pair.vip}/24" in h.addresses() for h in others), pair.group
        assert config_bytes(first) == config_bytes(second)
        assert lab.client is not None
        lab.client.run(["ping", "-c", "1", "-W", "2", pair.vip])
    assert agent_status(lab.hosts["server1"])["peer"]["name"] == "server2"
    assert heartbeat_pids(lab.hosts["server3"]) and heartbeat_pids(lab.hosts["server4"])
    keys = {name: lab.hosts[name].read("/etc/ha.d/authkeys") for name in ("server1", "server3")}
    assert keys["server1"] != keys["server3"]       # each pair its own secret


def hostname(host: Host) -> str:
    return host.run(["uname", "-n"]).stdout.strip()


def uuid(host: Host) -> bytes:
    return host.path("/var/lib/heartbeat/hb_uuid").read_bytes()


def measure_handoff(pair: Pair) -> float:
    """The longest client gap of one planned handoff each way (standby to server2, takeover back)."""
    lab, s1 = pair.lab, pair.lab.hosts["server1"]
    probe = lab.probe(interval=0.01, target=pair.vip)
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


def test_agent_pair_is_renamed_one_node_at_a_time_without_losing_the_vip(pairs: dict[str, Pair]) -> None:
    pair = pairs["agent"]
    lab, vip = pair.lab, pair.vip
    s1, s2 = pair.hosts.values()
    handoff = measure_handoff(pair)
    uuids = {name: uuid(host) for name, host in pair.hosts.items()}
    before = config_bytes(s1)

    # --check --diff first: the exact config edit of each step, nothing changed, no handoff.
    probe = lab.probe(interval=0.01, target=vip)
    try:
        probe.wait_for("server1", timeout=15)
        started = time.monotonic()
        checked = rename(pair, "--check", "--diff")
        took = time.monotonic() - started
    finally:
        quiet = probe.stop()
    assert_ok(checked)
    print(f"rename_node.yml --check --diff (agent): {took:.1f} s; client gaps {quiet.gaps()}")
    # Each step's diff is against the files on disk; the second starts from what the first would write.
    for edit in ("-node server1 server2\n+node db1 server2\n", f"-server1 IPaddr::{vip}/24/eth0",
                 f"+db1 IPaddr::{vip}/24/eth0", "-node server1 server2\n+node db1 db2\n"):
        assert edit in checked.stdout, checked.stdout[-6000:]
    assert [hostname(s1), hostname(s2)] == ["server1", "server2"]
    assert config_bytes(s1) == before and config_bytes(s2) == before
    assert {name: uuid(host) for name, host in pair.hosts.items()} == uuids
    assert [agent_status(h)["node"] for h in (s1, s2)] == ["server1", "server2"]
    assert quiet.holders() == ["server1"] and quiet.gaps() == [], quiet.gaps()

    probe = lab.probe(interval=0.01, target=vip)
    try:
        probe.wait_for("server1", timeout=15)
        started = time.monotonic()
        result = rename(pair)
        took = time.monotonic() - started
        probe.wait_for("server1", timeout=15)
    finally:
        seen = probe.stop()
    assert_ok(result)
    longest = seen.longest_gap()
    print(f"rename_node.yml (agent): {took:.1f} s; one planned handoff: {handoff * 1000:.0f} ms; "
          f"longest client gap during the rename: {longest * 1000:.0f} ms; gaps: "
          f"{[round((b - a) * 1000) for a, b in seen.gaps()]} ms; holders {seen.holders()}")

    for name, host in pair.hosts.items():
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
    assert s1.read("/etc/ha.d/haresources").splitlines()[-1].startswith(f"db1 IPaddr::{vip}/24/eth0")
    assert f"{vip}/24" in s1.addresses() and f"{vip}/24" not in s2.addresses()
    assert seen.holders()[-1] == "server1"
    # Two handoffs at most. The 10 ms probe quantizes each gap: a handoff measured with no lost probe (0 ms)
    # can lose one in the next run (20 ms), so each of the two may add one probe interval and a little.
    assert longest <= 2 * handoff + 2 * 0.01 + 0.005, (longest, handoff)
    # The other pair was not touched.
    assert [hostname(pairs["heartbeat"].lab.hosts[n]) for n in pairs["heartbeat"].names] == ["server3", "server4"]


def test_heartbeat_pair_rename_is_refused_without_opt_in_and_done_with_an_outage_with_it(
    pairs: dict[str, Pair],
) -> None:
    pair = pairs["heartbeat"]
    lab, vip = pair.lab, pair.vip
    s3, s4 = pair.hosts.values()
    pids = {name: heartbeat_pids(host) for name, host in pair.hosts.items()}
    before = config_bytes(s3)

    started = time.monotonic()
    refused = rename(pair)
    print(f"rename_node.yml (heartbeat, no opt-in) refused after {time.monotonic() - started:.1f} s")
    assert refused.returncode != 0
    assert "Refusing to rename nodes of a pair running Debian's heartbeat" in refused.stdout, refused.stdout[-3000:]
    assert "heartbeat_vip_rename_allow_outage" in refused.stdout
    assert [hostname(s3), hostname(s4)] == ["server3", "server4"]
    assert {name: heartbeat_pids(host) for name, host in pair.hosts.items()} == pids
    assert config_bytes(s3) == before

    uuids = {name: uuid(host) for name, host in pair.hosts.items()}
    probe = lab.probe(interval=0.01, target=vip)
    try:
        probe.wait_for("server3", timeout=15)
        started = time.monotonic()
        # This run goes through the installed collection's name; the others use the repo's path.
        done = rename(pair, fqcn=True, heartbeat_vip_rename_allow_outage=True)
        took = time.monotonic() - started
        back = probe.wait_for("server3", timeout=30)
    finally:
        seen = probe.stop()
    assert_ok(done)
    print(f"rename_node.yml (heartbeat, outage allowed): {took:.1f} s; VIP down for "
          f"{seen.longest_gap():.1f} s; back at +{back - started:.1f} s")
    assert seen.gaps(), "the VIP should have been down while both nodes restarted"
    assert [hostname(s3), hostname(s4)] == ["db3", "db4"]
    assert all(uuid(host) != uuids[name] for name, host in pair.hosts.items())
    for host in (s3, s4):
        assert host.run(["cl_status", "nodestatus", "db4" if host is s3 else "db3"]).stdout.strip() == "active"
    assert config_bytes(s3) == config_bytes(s4)
    assert "\nnode db3 db4\n" in s3.read("/etc/ha.d/ha.cf")
    assert f"{vip}/24" in s3.addresses() and f"{vip}/24" not in s4.addresses()
