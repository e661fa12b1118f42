"""Steady-state cost of a daemon: RSS and CPU share of every one of its processes, per host.

Measured with no probe running (the probe's own packets would wake the hosts), after the pair has
settled, over a window long enough for CPU ticks (10 ms each) to resolve a fraction of a percent.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from lab import Lab

from bench.contenders.base import Contender
from bench.timers import TimerSet
from bench.trial import reset, settle_s

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])   # utime + stime


def _rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except OSError:
        return 0


def _wait_vip(lab: Lab, host: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    h = lab.hosts[host]
    while not any(a.startswith(lab.vip + "/") for a in h.addresses()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host} did not take the VIP within {timeout:.0f} s")
        time.sleep(0.1)


def measure(lab: Lab, contender: Contender, timers: TimerSet, window_s: float) -> dict[str, object]:
    """{host: {"rss_mb", "cpu_pct", "procs"}} for both hosts; server1 is the active one."""
    reset(lab, contender)
    contender.install(timers, [lab.vip])
    try:
        # One after the other: the primary serves after initdead alone, and Heartbeat's joint-start
        # negotiation (about 10 s here) is measured by the trials, not waited for again.
        contender.start(lab.hosts["server1"])
        _wait_vip(lab, "server1", 2 * timers.initdead_ms / 1000 + 20)
        contender.start(lab.hosts["server2"])
        time.sleep(settle_s(timers))
        pids = {name: contender.pids(h) for name, h in lab.hosts.items()}
        before = {pid: _cpu_ticks(pid) for ps in pids.values() for pid in ps}
        rss: dict[str, list[int]] = {name: [] for name in pids}
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < window_s:
            for name, ps in pids.items():
                rss[name].append(sum(_rss_kb(p) for p in ps))
            time.sleep(min(1.0, max(0.0, window_s - elapsed)))
        elapsed = time.monotonic() - started
        out: dict[str, object] = {}
        for name, ps in pids.items():
            ticks = 0
            for pid in ps:
                now, then = _cpu_ticks(pid), before.get(pid)
                if now is not None and then is not None:
                    ticks += now - then
            samples = sorted(rss[name])
            out[name] = {
                "rss_mb": samples[len(samples) // 2] / 1024 if samples else None,
                "cpu_pct": 100 * ticks / CLK_TCK / elapsed,
                "procs": len(ps),
            }
        out["window_s"] = elapsed
        return out
    finally:
        reset(lab, contender)
