"""Numbers from the client's probe log, on the answers' *receive* times.

Send times alone mislead: while the client's ARP entry for the VIP is incomplete the kernel queues
probes, and the first one is answered only when a daemon adds the VIP and announces it. What a user
feels is when answers arrive, so events are "first answer received from X after t", and a handoff
gap is the silence between the last answer from the old holder and the first from the new one, less
one probe interval (two consecutive answers lose nothing).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.probe import Probe


def probe_log(probe: Probe) -> Path:
    """The prober's log file. lab.probe.ProbeResult drops receive times, so we read the log ourselves."""
    return probe._out  # noqa: SLF001 (see report: lab could expose receive times instead)


@dataclass(frozen=True)
class Record:
    """sent: seq → send time; answers: (receive time, host, seq) in receive order."""

    sent: dict[int, float]
    answers: list[tuple[float, str, int]]

    @classmethod
    def parse(cls, text: str) -> Record:
        sent: dict[int, float] = {}
        answers: list[tuple[float, str, int]] = []
        seen: set[int] = set()
        for line in text.splitlines():
            parts = line.split()
            if parts[:1] == ["S"] and len(parts) == 3:
                sent[int(parts[1])] = float(parts[2])
            elif parts[:1] == ["R"] and len(parts) == 4 and int(parts[1]) not in seen:
                seen.add(int(parts[1]))
                answers.append((float(parts[3]), parts[2], int(parts[1])))
        answers.sort()
        return cls(sent, answers)

    def first_answer(self, after: float, host: str | None = None) -> float | None:
        return next((t for t, h, _unused in self.answers if t >= after and (host is None or h == host)), None)

    def last_answer_before(self, before: float, host: str) -> float | None:
        found = None
        for t, h, _unused in self.answers:
            if t >= before:
                break
            if h == host:
                found = t
        return found

    def handoff_gap(self, src: str, dst: str, after: float, interval: float) -> float | None:
        """Silence while service moves from `src` to `dst` after `after` (None: it never moved)."""
        arrived = self.first_answer(after, dst)
        left = None if arrived is None else self.last_answer_before(arrived, src)
        return None if arrived is None or left is None else max(0.0, arrived - left - interval)

    def lost(self, start: float, end: float, interval: float) -> float:
        """Unanswered probes sent in [start, end), as time (count × interval): robust to jitter."""
        answered = {seq for _unused, _unused, seq in self.answers}
        return interval * sum(1 for seq, t in self.sent.items() if start <= t < end and seq not in answered)

    def holders(self) -> list[str]:
        seq: list[str] = []
        for _unused, h, _unused in self.answers:
            if not seq or seq[-1] != h:
                seq.append(h)
        return seq
