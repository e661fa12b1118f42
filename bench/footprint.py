"""Steady-state cost of a daemon: RSS, CPU share and CPU per wake-up of every one of its processes, per host.

Measured with no probe running (the probe's own packets would wake the hosts), after the pair has
settled. CPU comes from the scheduler's own accounting (/proc/PID/task/TID/schedstat: nanoseconds on
a CPU and the number of times the thread was switched in), summed over every thread of every process:
exact, where utime + stime are 10 ms ticks. A switch-in is a wake-up (a timer, a datagram), so
CPU ÷ switch-ins is the cost of one wake-up, the unit an idle daemon's cost is made of.

`python -m bench.footprint [SECONDS] [--timers NAME,...] [--contenders NAME,...] [--floor]` measures just this, on a
lab of its own (root), every contender in the same run: the repeatable check of an agent's idle cost.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lab import Lab

from bench.contenders.base import Contender
from bench.timers import TimerSet
from bench.trial import reset, settle_s

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
#: bench/floor.py's port: beside the contenders' 694, never in their way.
FLOOR_PORT = 7694


def _sched(pid: int) -> tuple[int, int] | None:
    """(ns on a CPU, switch-ins) of every thread of `pid`, or None when it is gone."""
    ran = switched = 0
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            run_ns, _wait_ns, slices = Path(task.path, "schedstat").read_text().split()
            ran, switched = ran + int(run_ns), switched + int(slices)
    except (OSError, ValueError):
        return None
    return ran, switched


def _rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except OSError:
        return 0


def _holds_vip(lab: Lab, host: str) -> bool:
    return any(a.startswith(lab.vip + "/") for a in lab.hosts[host].addresses())


def _wait_vip(lab: Lab, contender: Contender, host: str, timeout: float) -> None:
    """Until `host` holds the VIP; a timeout says where the VIP is, what runs and what `host` logged."""
    deadline = time.monotonic() + timeout
    while not _holds_vip(lab, host):
        if time.monotonic() > deadline:
            holders = [name for name in lab.hosts if _holds_vip(lab, name)] or ["nobody"]
            running = {name: contender.pids(h) for name, h in lab.hosts.items()}
            raise TimeoutError(f"{host} did not take the VIP within {timeout:.0f} s (held by {', '.join(holders)}; "
                               f"{contender.name} pids {running}); {host}'s log ends:\n"
                               + contender.log_tail(lab.hosts[host]))
        time.sleep(0.1)


def measure(lab: Lab, contender: Contender, timers: TimerSet, window_s: float) -> dict[str, object]:
    """{host: {"rss_mb", "cpu_pct", "procs"}} for both hosts; server1 is the active one."""
    reset(lab, contender)
    contender.install(timers, [lab.vip])
    try:
        # One after the other: the primary serves after initdead alone, and Heartbeat's joint-start
        # negotiation (about 10 s here) is measured by the trials, not waited for again.
        contender.start(lab.hosts["server1"])
        _wait_vip(lab, contender, "server1", 2 * timers.initdead_ms / 1000 + 20)
        contender.start(lab.hosts["server2"])
        time.sleep(settle_s(timers))
        return _sample({name: contender.pids(h) for name, h in lab.hosts.items()}, window_s)
    finally:
        reset(lab, contender)


def measure_floor(lab: Lab, kind: str, timers: TimerSet, window_s: float) -> dict[str, object]:
    """`measure` for a pair of bench/floor.py processes (`kind`: asyncio or selector) at `timers`' keepalive."""
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    script = str(Path(__file__).with_name("floor.py"))
    procs = {h.name: h.spawn([sys.executable, script, kind, h.address, peer.address, str(FLOOR_PORT),
                              str(timers.keepalive_s)]) for h, peer in ((s1, s2), (s2, s1))}
    try:
        time.sleep(settle_s(timers))
        return _sample({name: [p.pid] for name, p in procs.items()}, window_s)
    finally:
        for name, p in procs.items():
            lab.hosts[name].kill(p, 9)
            p.wait()


def _sample(pids: dict[str, list[int]], window_s: float) -> dict[str, object]:
    before = {pid: _sched(pid) for ps in pids.values() for pid in ps}
    rss: dict[str, list[int]] = {name: [] for name in pids}
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < window_s:
        for name, ps in pids.items():
            rss[name].append(sum(_rss_kb(p) for p in ps))
        time.sleep(min(1.0, max(0.0, window_s - elapsed)))
    elapsed = time.monotonic() - started
    out: dict[str, object] = {}
    for name, ps in pids.items():
        ran = switched = 0
        for pid in ps:
            now, then = _sched(pid), before.get(pid)
            if now is not None and then is not None:
                ran, switched = ran + now[0] - then[0], switched + now[1] - then[1]
        samples = sorted(rss[name])
        out[name] = {
            "rss_mb": samples[len(samples) // 2] / 1024 if samples else None,
            "cpu_pct": 100 * ran / 1e9 / elapsed,
            "wakeups_per_s": switched / elapsed,
            "us_per_wakeup": ran / 1000 / switched if switched else None,
            "procs": len(ps),
        }
    out["window_s"] = elapsed
    return out


def main(argv: list[str] | None = None) -> int:
    from bench.contenders import ALL  # pylint: disable=import-outside-toplevel
    from bench.timers import FOOTPRINT_SETS  # pylint: disable=import-outside-toplevel

    sets = {t.name: t for t in FOOTPRINT_SETS}
    p = argparse.ArgumentParser(prog="python -m bench.footprint", description="idle CPU, wake-ups and RSS per contender")
    p.add_argument("seconds", nargs="?", type=float, default=60.0, help="measuring window per cell (default 60)")
    p.add_argument("--timers", default="100ms/300ms,1s/3s", help=f"comma-separated, of: {', '.join(sets)}")
    p.add_argument("--contenders", default="hbvip,keepalived", help="comma-separated, of: "
                   + ", ".join(c.name for c in ALL))
    p.add_argument("--floor", action="store_true",
                   help="also a pair of bench/floor.py (asyncio, selector): a Python loop that only beats")
    p.add_argument("--prefix", default="fp", help="lab namespace prefix (the pid is appended)")
    args = p.parse_args(argv)
    wanted = args.contenders.split(",")
    print(f"{'timers':<12} {'contender':<15} {'host':<8} {'cpu %':>7} {'wakeups/s':>10} {'µs/wakeup':>10} {'rss MB':>7}")
    with Lab(prefix=f"{args.prefix}{os.getpid()}", net=None) as lab:
        contenders = [c(lab) for c in ALL if c.name in wanted]
        for name in args.timers.split(","):
            cells = [(c.name, lambda c=c: measure(lab, c, sets[name], args.seconds))
                     for c in contenders if c.supports(sets[name])]
            if args.floor:
                cells += [(f"floor-{kind}", lambda kind=kind: measure_floor(lab, kind, sets[name], args.seconds))
                          for kind in ("asyncio", "selector")]
            for label, run in cells:
                out = run()
                for host in ("server1", "server2"):
                    fp = out[host]
                    assert isinstance(fp, dict)
                    us = fp["us_per_wakeup"]
                    print(f"{name:<12} {label:<15} {host:<8} {fp['cpu_pct']:>7.3f} {fp['wakeups_per_s']:>10.1f} "
                          f"{us if us is None else f'{us:.0f}':>10} {fp['rss_mb'] or 0:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
