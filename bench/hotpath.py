"""CPU per heartbeat round and per timer wake-up, measured in one process without a lab.

A round is what a settled node does per keepalive: read the peer's heartbeat (receive, verify, decode,
membership, failover) and run a turn that sends ours (encode, sign, send). The real `Node` runs on a
stepped clock with a transport that keeps nothing, fed the peer's datagrams (encoded beforehand);
`--profile` prints where the time goes. The wake-up cost is asyncio's own: a loop doing nothing but
`call_at` timers on an idle selector, i.e. the floor under every turn the agent runs.

`python -m bench.hotpath [ROUNDS] [--profile]` prints µs of CPU per round and per wake-up, the latter
also for a bare `selectors` loop (what replacing asyncio on the hot path could save at most).
`--pause MS` sleeps MS between rounds, as an idle agent does between keepalives, and prints the round's
CPU then: what the same work costs once the caches (and the core) have gone cold.
"""
from __future__ import annotations

# pylint: disable=wrong-import-position
from hbvip.cli import _without_openssl  # pylint: disable=protected-access

_without_openssl()  # as `hbvip run` does before anything imports hashlib: the same HMAC code as the daemon

import argparse
import asyncio
import cProfile
import heapq
import os
import pstats
import selectors
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hbvip.clock import Clock
from hbvip.config import load_config
from hbvip.link import Link
from hbvip.log import EventLog
from hbvip.node import Node, Paths
from hbvip.wire import Signer, build, encode

SEED = Path(__file__).resolve().parents[1] / "tests" / "data" / "config" / "good" / "seed"
KEEPALIVE = 0.1


@dataclass
class SteppedClock:
    now: float = 1000.0
    clock: Clock = field(init=False)

    def __post_init__(self) -> None:
        self.clock = Clock(monotonic=lambda: self.now, wall=lambda: 1.7e9 + self.now)


class NullTransport:
    """Sends nowhere; what a node's turn needs of a transport."""

    peer_addresses = ["10.99.0.2"]
    arrival_interface = "eth0"
    arrival_time = None
    port = 694

    def __init__(self) -> None:
        self.sent = 0

    def send(self, data: bytes) -> None:
        self.sent += 1

    def close(self) -> None:
        pass

    def drain_quiet(self) -> None:
        pass

    def steer(self, kind: str, prefix: bytes) -> bool:
        return False


class _Resources:
    counters: dict[str, int] = {}

    async def cleanup_stale(self, group: object) -> bool:
        return False


def settled_node(workdir: Path, stepped: SteppedClock) -> Node:
    config_dir = workdir / "ha.d"
    shutil.copytree(SEED, config_dir)
    os.chmod(config_dir / "authkeys", 0o600)
    hacf = config_dir / "ha.cf"
    keep = [line for line in hacf.read_text().splitlines()
            if not line.startswith(("logfile", "debugfile", "keepalive", "deadtime", "warntime", "initdead"))]
    hacf.write_text("\n".join(keep + ["keepalive 100ms", "warntime 200ms", "deadtime 300ms", "initdead 1"]) + "\n")
    config = load_config(config_dir, "server2", init_dir=workdir / "init.d")
    link = Link(config.node_name, Signer.from_authkeys(config.authkeys), stepped.clock)
    link.transport = NullTransport()  # type: ignore[assignment]
    link.uuid = b"\x01" * 16
    return Node(config, Paths(config_dir, workdir, workdir, workdir / "init.d"), log=EventLog("server2", stderr=False),
                link=link, clock=stepped.clock, started=stepped.now, runner=_Resources())  # type: ignore[arg-type]


def peer_heartbeats(node: Node, count: int, stepped: SteppedClock) -> list[bytes]:
    signer = Signer.from_authkeys(node.config.authkeys)
    body = (("st", "active"), ("dt", "12c"), ("protocol", "1"), ("hbvip_digest", node.config.digest))
    return [encode(build("status", body, src="server1", srcuuid=b"\x02" * 16, seq=seq, hg=7,
                         ts=int(stepped.now), ld="0.00 0.00 0.00 1/1 1"), signer) for seq in range(1, count + 1)]


def _round(node: Node, data: bytes, stepped: SteppedClock) -> None:
    """One keepalive of a settled node: the peer's heartbeat, read from the quiet lane at the start of
    the turn with its arrival time (hbvip.net.quiet), then the turn that sends ours."""
    stepped.now += KEEPALIVE
    transport = node.link.transport
    transport.arrival_time = stepped.now - KEEPALIVE / 2  # type: ignore[union-attr]
    node.on_datagram(data, ("10.99.0.1", 694))
    transport.arrival_time = None  # type: ignore[union-attr]
    node._turn_once()  # pylint: disable=protected-access


def rounds(count: int, profile: bool = False, pause: float = 0.0) -> float:
    """µs of CPU per round (peer heartbeat in, our heartbeat out) of a settled backup; `pause` seconds
    of sleep between rounds, as a keepalive leaves them, measure a round on cold caches."""
    stepped = SteppedClock()
    with tempfile.TemporaryDirectory(prefix="hbvip-hotpath-") as tmp:
        node = settled_node(Path(tmp), stepped)
        warm = 50
        datagrams = peer_heartbeats(node, count + warm, stepped)

        async def run() -> float:
            node.next_status = stepped.now
            for data in datagrams[:warm]:           # meet the peer, settle
                _round(node, data, stepped)
            profiler = cProfile.Profile() if profile else None
            spent = 0.0
            if profiler:
                profiler.enable()
            for data in datagrams[warm:]:
                if pause:
                    time.sleep(pause)
                started = time.process_time()
                _round(node, data, stepped)
                spent += time.process_time() - started
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return spent / count * 1e6

        return asyncio.run(run())


def wakeups(count: int) -> float:
    """µs of CPU per timer wake-up of an otherwise idle asyncio loop (a `call_at` chain, 0.1 ms apart)."""
    async def run() -> float:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        left = [count]

        def tick() -> None:
            left[0] -= 1
            if left[0] == 0:
                done.set_result(None)
            else:
                loop.call_at(loop.time() + 0.0001, tick)

        started = time.process_time()
        loop.call_soon(tick)
        await done
        return (time.process_time() - started) / count * 1e6

    return asyncio.run(run())


def selector_wakeups(count: int) -> float:
    """The same timer chain on a bare `selectors` loop (epoll with a timeout, a heap of deadlines): what a
    hand-written loop for the hot path would cost per wake-up, to weigh against asyncio's."""
    selector = selectors.DefaultSelector()
    timers: list[float] = []
    started = time.process_time()
    heapq.heappush(timers, time.monotonic())
    for _unused in range(count):
        selector.select(max(0.0, timers[0] - time.monotonic()))
        heapq.heappop(timers)
        heapq.heappush(timers, time.monotonic() + 0.0001)
    selector.close()
    return (time.process_time() - started) / count * 1e6


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hotpath", description="CPU per heartbeat round and wake-up")
    p.add_argument("rounds", nargs="?", type=int, default=5000)
    p.add_argument("--profile", action="store_true", help="print where a round's time goes")
    p.add_argument("--pause", type=float, metavar="MS",
                   help="sleep MS between rounds, as a keepalive does: the round on cold caches (rounds only)")
    args = p.parse_args(argv)
    if args.pause:
        cold = rounds(args.rounds, pause=args.pause / 1000)
        print(f"round (peer heartbeat in, ours out) after {args.pause:g} ms asleep: {cold:.1f} µs CPU")
        return 0
    per_round = rounds(args.rounds, profile=args.profile)
    per_wake = wakeups(args.rounds)
    bare = selector_wakeups(args.rounds)
    print(f"round (peer heartbeat in, ours out): {per_round:.1f} µs CPU; asyncio timer wake-up: {per_wake:.1f} µs CPU; "
          f"bare selector timer wake-up: {bare:.1f} µs CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
