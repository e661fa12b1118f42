"""The failover the demo shows, measured from the client the way a user feels it.

A probe sends to the VIP every 10 ms and each host answers with its name: the answering name is the
holder, lost probes are the outage. The primary then loses power (its engine SIGKILLed, link down), the
backup takes over, the primary comes back and takes its VIP home (auto_failback on).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from demo.timeline import Timeline
from lab import Host, Lab, Probe, ProbeResult

PRIMARY, BACKUP = "server1", "server2"
STEADY_S = 3.0
# How each engine is started on a host without systemd (the role installs a sysv script for both).
INIT_SCRIPT = {"agent": "/etc/init.d/hbvip", "heartbeat": "/etc/init.d/heartbeat"}


@dataclass(frozen=True)
class Outcome:
    takeover_s: float  # power loss of the primary -> first probe answered by the backup
    failback_s: float  # primary's engine started -> first probe answered by the primary
    failback_gap_s: float  # longest run of lost probes while the VIP went home
    holders: list[str]  # answering hosts in order, repeats folded


def engine_pids(host: Host, engine: str) -> list[int]:
    """The engine's processes on this host: the agent's `hbvip run`, or every `heartbeat` process."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        ours = comm == "heartbeat" if engine == "heartbeat" else any(
            a.endswith(b"/bin/hbvip") for a in argv
        ) and b"run" in argv
        if ours and host.owns_pid(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _describe(result: ProbeResult) -> str:
    recent = result.samples[-50:]
    holder = next((h for _unused, h in reversed(recent) if h), None)
    lost = sum(1 for _unused, h in result.samples if h is None)
    return (
        f"VIP served by {holder or 'nobody'}  |  probes sent {len(result.samples)}, "
        f"answered {result.answered}, lost {lost}"
    )


def _watch(probe: Probe, timeline: Timeline, until: Callable[[ProbeResult], float | None], timeout: float) -> float:
    """Refresh the status line until `until` finds its moment (a probe send time); fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe.snapshot()
        timeline.status(_describe(result))
        found = until(result)
        if found is not None:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"nothing changed within {timeout:.0f} s")


def _hold(probe: Probe, timeline: Timeline, seconds: float) -> ProbeResult:
    end = time.monotonic() + seconds
    _watch(probe, timeline, lambda _: time.monotonic() if time.monotonic() >= end else None, seconds + 5)
    return probe.snapshot()


def run(lab: Lab, engine: str, timeline: Timeline, deadtime_s: float) -> Outcome:
    primary = lab.hosts[PRIMARY]
    probe = lab.probe(interval=0.01)
    try:
        started = lab.now()
        timeline.event(f"client probes {lab.vip} every 10 ms; each host answers with its name")
        _watch(probe, timeline, lambda r: r.first_answer_from(PRIMARY, started), 60)
        timeline.event(f"{PRIMARY} holds the VIP {lab.vip} (its home node)", "green")
        before = lab.now()
        steady = _hold(probe, timeline, STEADY_S)
        answered = sum(1 for t, h in steady.samples if t >= before and h == PRIMARY)
        timeline.event(f"steady: {answered} probes answered by {PRIMARY} in {STEADY_S:.0f} s")

        lost = lab.now()
        primary.power_loss(engine_pids(primary, engine))
        timeline.event(f"POWER LOSS on {PRIMARY}: {engine} killed (SIGKILL), link down", "bold red")
        moved = _watch(probe, timeline, lambda r: r.first_answer_from(BACKUP, lost), 30)
        takeover = moved - lost
        timeline.event(
            f"TAKEOVER: {BACKUP} serves the VIP {takeover:.2f} s after the power loss "
            f"(deadtime {deadtime_s:.2f} s)", "bold green",
        )
        _hold(probe, timeline, STEADY_S)

        primary.power_on()
        primary.run([INIT_SCRIPT[engine], "start"], timeout=60)
        back = lab.now()
        timeline.event(f"{PRIMARY} powered on, {engine} started again")
        home = _watch(probe, timeline, lambda r: r.first_answer_from(PRIMARY, back), 60)
        _hold(probe, timeline, STEADY_S)
        result = probe.stop()
    finally:
        probe.stop()
    gap = max((b - a for a, b in result.gaps() if b >= back), default=0.0)
    timeline.event(
        f"FAILBACK: {PRIMARY} serves the VIP again {home - back:.2f} s after it came back "
        f"(longest probe gap during the move {gap * 1000:.0f} ms)", "bold green",
    )
    return Outcome(takeover, home - back, gap, result.holders())
