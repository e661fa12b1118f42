"""Re-announcing held VIPs (split-brain heal, `garp_refresh`) goes out on the interface the VIP was really
added on — not on a guessed `eth0` — and stops when the VIP is released. Netlink and the ARP socket are
faked: these tests are about which device and when, not about frames (test_net_garp_frames.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hbvip.config import parse_haresources
from hbvip.resources import runner as runner_module
from hbvip.resources.runner import ResourceRunner
from hbvip.resources.scripts import ScriptCall


@pytest.fixture
def garps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    sent: list[tuple[str, str, int]] = []
    placed: set[str] = set()

    async def add_vip(vip, addresses=None):
        placed.add(vip.address)
        return "ens3:0", False          # the kernel's choice: the only interface whose subnet holds the VIP

    async def del_vip(vip, addresses=None):
        return vip.address in placed and not placed.discard(vip.address)

    async def vip_present(vip, addresses=None):
        return vip.address in placed

    async def send_garp(iface, ip, *, count, interval):
        sent.append((iface, ip, count))
        return count

    async def all_addresses():
        return []                        # the faked add/del above ignore the group's address snapshot

    for name, fake in (("add_vip", add_vip), ("del_vip", del_vip), ("vip_present", vip_present),
                       ("send_garp", send_garp), ("all_addresses", all_addresses)):
        monkeypatch.setattr(runner_module, name, fake)
    return sent


def group(line: str):
    groups, problems = parse_haresources(line + "\n", "haresources")
    assert not problems
    return groups[0]


def test_vip_without_interface_is_announced_where_it_was_added(garps, tmp_path: Path) -> None:
    async def scenario() -> int:
        runner = ResourceRunner(tmp_path, garp_count=3, garp_interval=0.01)
        g = group("server1 IPaddr::10.99.0.50/24")
        assert (await runner.acquire(g)).ok
        await asyncio.sleep(0.05)
        announced = runner.announce(g)
        await asyncio.sleep(0.05)
        runner.announce(g, count=1, quiet=True)
        await asyncio.sleep(0.05)
        await runner.release(g)
        gone = runner.announce(g, count=1, quiet=True)
        await asyncio.sleep(0.05)
        return announced * 10 + gone

    assert asyncio.run(scenario()) == 10          # one VIP announced while held, none after release
    assert garps == [("ens3", "10.99.0.50", 3), ("ens3", "10.99.0.50", 3), ("ens3", "10.99.0.50", 1)]


def test_named_interface_is_used_as_written(garps, tmp_path: Path) -> None:
    async def scenario() -> None:
        runner = ResourceRunner(tmp_path, garp_count=1, garp_interval=0.01)
        g = group("server1 IPaddr2::10.99.0.51/24/eth1")
        assert (await runner.acquire(g)).ok
        await asyncio.sleep(0.02)
        runner.announce(g)
        await asyncio.sleep(0.02)

    asyncio.run(scenario())
    assert [iface for iface, _ip, _count in garps] == ["eth1", "eth1"]


def test_refresh_does_not_cut_a_running_burst_short(garps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow_garp(iface, ip, *, count, interval):
        garps.append((iface, ip, count))
        await asyncio.sleep(1)
        return count

    async def scenario() -> int:
        runner = ResourceRunner(tmp_path, garp_count=5, garp_interval=0.2)
        g = group("server1 IPaddr::10.99.0.52/24")
        monkeypatch.setattr(runner_module, "send_garp", slow_garp)
        assert (await runner.acquire(g)).ok
        await asyncio.sleep(0.05)           # the burst's first frame is out, the rest still to come
        skipped = runner.announce(g, count=1, quiet=True)
        await runner.release(g)
        return skipped

    assert asyncio.run(scenario()) == 0
    assert garps == [("ens3", "10.99.0.52", 5)]


def test_first_garp_leaves_before_the_next_script_is_started(
    garps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A planned handoff's gap ends when the client hears the GARP: it must not wait for the fork of the
    group's next resource script."""
    order: list[str] = []

    async def first_frame_now(iface, ip, *, count, interval):
        order.append("garp")                # a burst's first frame goes out in the task's first step
        await asyncio.sleep(interval)
        return count

    async def script(path, resource, args, action, *, timeout, env):
        order.append(f"{resource} {action}")
        return ScriptCall(resource, action, 0, "", 0.0, False)

    monkeypatch.setattr(runner_module, "send_garp", first_frame_now)
    monkeypatch.setattr(runner_module, "run_script", script)
    (tmp_path / "resource.d").mkdir()
    (tmp_path / "resource.d" / "other.sh").write_text("#!/bin/sh\n")

    async def scenario() -> None:
        runner = ResourceRunner(tmp_path, garp_count=2, garp_interval=0.01)
        assert (await runner.acquire(group("server1 IPaddr::10.99.0.53/24 other.sh"))).ok

    asyncio.run(scenario())
    assert order[:1] == ["garp"] and "other.sh start" in order, order
