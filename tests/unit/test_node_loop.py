"""The node's turn loop: when heartbeats leave and when a silent peer is declared dead.

The real `Node` with a fake transport (a list of sent datagrams) on a real event loop; the peer's
heartbeats are encoded by the wire codec as a second node would send them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from hbvip.clock import SYSTEM_CLOCK
from hbvip.cluster import Hold
from hbvip.config import load_config
from hbvip.link import Link
from hbvip.log import EventLog
from hbvip.node import Node, Paths
from hbvip.views import StatusView
from hbvip.wire import Signer, build, decode, encode

SEED = Path(__file__).resolve().parents[1] / "data" / "config" / "good" / "seed"
PEER_UUID = bytes(range(16))


class FakeTransport:
    peer_addresses: list[str] = []
    counters: dict[str, int] = {}
    arrival_interface: str | None = "eth0"
    arrival_time: float | None = None

    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []

    def send(self, data: bytes) -> None:
        self.sent.append((time.monotonic(), data))

    def close(self) -> None:
        pass

    def drain_quiet(self) -> None:
        pass

    def steer(self, kind: str, prefix: bytes) -> bool:
        return False

    def heartbeats(self) -> list[float]:
        """When each `status` message (a heartbeat) left."""
        return [t for t, d in self.sent if decode(d, None).type == "status"]


class FakeRunner:
    """Resource work that always succeeds and touches nothing (a unit test must not add a VIP here)."""

    counters: dict[str, int] = {}

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def cleanup_stale(self, group: object) -> bool:
        self.calls.append("cleanup start")
        await asyncio.sleep(0.05)
        self.calls.append("cleanup end")
        return True

    async def acquire(self, group: object) -> SimpleNamespace:
        self.calls.append("acquire")
        return SimpleNamespace(ok=True, failed=None)

    async def release(self, group: object) -> SimpleNamespace:
        return SimpleNamespace(ok=True, failed=[])


def make_agent(tmp_path: Path, *, keepalive: str, warntime: str, deadtime: str) -> Node:
    config_dir = tmp_path / "ha.d"
    shutil.copytree(SEED, config_dir)
    os.chmod(config_dir / "authkeys", 0o600)
    hacf = config_dir / "ha.cf"
    lines = [line for line in hacf.read_text().splitlines()
             if not line.startswith(("logfile", "debugfile", "keepalive", "deadtime", "warntime", "initdead"))]
    lines += [f"keepalive {keepalive}", f"deadtime {deadtime}", f"warntime {warntime}", "initdead 10"]
    hacf.write_text("\n".join(lines) + "\n")
    config = load_config(config_dir, "server1", init_dir=tmp_path / "init.d")
    link = Link(config.node_name, Signer.from_authkeys(config.authkeys), SYSTEM_CLOCK)
    link.transport = FakeTransport()  # type: ignore[assignment]
    return Node(config, Paths(config_dir, tmp_path / "state", tmp_path / "run", tmp_path / "init.d"),
                log=EventLog(config.node_name, stderr=False), link=link, clock=SYSTEM_CLOCK,
                started=time.monotonic(), runner=FakeRunner())  # type: ignore[arg-type]


def peer_status(agent: Node, seq: int, deadtime_ms: int) -> bytes:
    fields = build("status", (("st", "active"), ("dt", f"{deadtime_ms:x}"), ("protocol", "1")), src="server2",
                   srcuuid=PEER_UUID, seq=seq, hg=7, ts=int(time.time()), ld="0.00 0.00 0.00 1/1 1")
    return encode(fields, Signer.from_authkeys(agent.config.authkeys))


async def running(agent: Node) -> asyncio.Task[None]:
    agent.next_status = time.monotonic()
    task = asyncio.get_running_loop().create_task(agent.loop())
    await asyncio.sleep(0)
    return task


async def stop(agent: Node, task: asyncio.Task[None]) -> None:
    agent.stopping.set()
    await task


def test_silent_peer_is_dead_at_last_heard_plus_deadtime_not_on_a_later_keepalive(tmp_path: Path) -> None:
    """Our keepalive is 1 s; the peer advertises a 300 ms dead time (its `dt`), which is what counts:
    death must not wait for our next keepalive turn."""
    agent = make_agent(tmp_path, keepalive="1", warntime="2", deadtime="3")

    async def scenario() -> tuple[float, float | None]:
        task = await running(agent)
        await asyncio.sleep(0.05)
        agent.on_datagram(peer_status(agent, 1, 300), ("10.99.0.2", 694))
        heard = time.monotonic()
        dead_at = None
        while time.monotonic() - heard < 0.9 and dead_at is None:
            await asyncio.sleep(0.002)
            if agent.membership.peer.status == "dead":
                dead_at = time.monotonic()
        await stop(agent, task)
        return heard, dead_at

    heard, dead_at = asyncio.run(scenario())
    assert dead_at is not None, "the peer was not declared dead within 900 ms (next keepalive at 1 s)"
    assert dead_at - heard >= 0.3
    assert dead_at - heard < 0.9


def test_heartbeat_goes_out_with_the_peers_when_ours_is_due_within_half_a_keepalive(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, keepalive="1", warntime="2", deadtime="3")
    transport = agent.link.transport

    async def scenario() -> list[float]:
        task = await running(agent)
        await asyncio.sleep(0.05)
        assert len(transport.heartbeats()) == 1            # the turn at start
        # Ours is due in ~950 ms: the peer's beat does not pull it forward.
        agent.on_datagram(peer_status(agent, 1, 3000), ("10.99.0.2", 694))
        assert len(transport.heartbeats()) == 1
        agent.next_status = time.monotonic() + 0.4       # now it is due within half a keepalive
        agent.wake.reschedule(agent.next_deadline())
        agent.on_datagram(peer_status(agent, 2, 3000), ("10.99.0.2", 694))
        sent_along = time.monotonic()
        assert len(transport.heartbeats()) == 2
        await asyncio.sleep(0.5)                          # the old due time passes: no extra beat
        await stop(agent, task)
        return [sent_along, agent.next_status]

    sent_along, next_status = asyncio.run(scenario())
    assert len(transport.heartbeats()) == 2
    assert next_status == pytest.approx(sent_along + 1.0, abs=0.05)   # the grid restarts from the shared beat


def test_peer_heartbeat_does_not_make_the_agent_beat_twice_as_often(tmp_path: Path) -> None:
    """Beating along shortens an interval to no less than half a keepalive: 10 peer beats in 1 s at a
    400 ms keepalive never make more than 1 s / 200 ms + 1 heartbeats."""
    agent = make_agent(tmp_path, keepalive="400ms", warntime="1", deadtime="2")
    transport = agent.link.transport

    async def scenario() -> None:
        task = await running(agent)
        for seq in range(1, 11):
            agent.on_datagram(peer_status(agent, seq, 2000), ("10.99.0.2", 694))
            await asyncio.sleep(0.1)
        await stop(agent, task)

    asyncio.run(scenario())
    times = transport.heartbeats()
    assert 3 <= len(times) <= 6
    assert all(b - a >= 0.19 for a, b in zip(times, times[1:]))


def test_acquisition_at_start_waits_for_the_stale_vip_cleanup(tmp_path: Path) -> None:
    """The cleanup of VIPs left by a crash runs while the agent meets its peer; a decision to acquire
    made meanwhile must not add the VIP before the cleanup is over (it would remove it again)."""
    agent = make_agent(tmp_path, keepalive="1", warntime="2", deadtime="3")
    runner = agent.groups.runner

    async def scenario() -> None:
        agent.groups.start_cleanup()
        await asyncio.sleep(0)
        await agent.groups.acquire_now(Hold.LOCAL, "test")

    asyncio.run(scenario())
    assert runner.calls == ["cleanup start", "cleanup end", "acquire"]


def test_status_of_a_running_node_has_exactly_the_documented_shape(
        tmp_path: Path, assert_shape: Callable[[object, object], None]) -> None:
    """`hbvip status --json`, the metrics and the Ansible module read this document: its keys are
    hbvip.views.StatusView's, no more and no fewer, also once the peer was heard."""
    agent = make_agent(tmp_path, keepalive="1", warntime="2", deadtime="3")

    async def scenario() -> list[StatusView]:
        task = await running(agent)
        before = agent.status()
        agent.on_datagram(peer_status(agent, 1, 3000), ("10.99.0.2", 694))
        after = agent.status()
        await stop(agent, task)
        return [before, after]

    before, after = asyncio.run(scenario())
    for st in (before, after):
        assert_shape(st, StatusView)
    assert before["peer"]["state"] != after["peer"]["state"] and after["peer"]["last_heard_s"] is not None
    assert [g["state"] for g in after["groups"]] == ["unserved"]
    assert after["counters"]["packets_received"] == 1
