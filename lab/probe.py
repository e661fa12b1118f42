"""Who serves the VIP, seen from the client: the probe and the ARP watch, and what they recorded.

A takeover is measured the way a user feels it: a client sends to VIP:port every few ms, each host
answers with its hostname; lost datagrams are the outage, the answering name is the holder.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

AGENTS = Path(__file__).with_name("_agents.py")


def agent_cmd(*args: object) -> list[str]:
    return [sys.executable, "-u", str(AGENTS), *map(str, args)]


def wait_ready(out: Path, proc: subprocess.Popen, what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().startswith("ready\n"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        time.sleep(0.01)
    raise TimeoutError(f"{what} not ready after {timeout}s")


def stop_proc(proc: subprocess.Popen, timeout: float = 3) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class ProbeResult:
    """Samples in send order: (client monotonic send time, answering hostname or None if lost)."""

    samples: list[tuple[float, str | None]]

    @classmethod
    def parse(cls, text: str) -> ProbeResult:
        sent: dict[int, float] = {}
        answer: dict[int, str] = {}
        for line in text.splitlines():
            parts = line.split()
            if parts[:1] == ["S"] and len(parts) == 3:
                sent[int(parts[1])] = float(parts[2])
            elif parts[:1] == ["R"] and len(parts) == 4:
                answer.setdefault(int(parts[1]), parts[2])
        return cls([(t, answer.get(seq)) for seq, t in sorted(sent.items())])

    def holder_at(self, t: float) -> str | None:
        """The answer to the last probe sent at or before t (None: that probe was lost)."""
        current = None
        for ts, host in self.samples:
            if ts > t:
                break
            current = host
        return current

    def first_answer_from(self, host: str, after: float) -> float | None:
        return next((ts for ts, h in self.samples if ts >= after and h == host), None)

    def gaps(self) -> list[tuple[float, float]]:
        """Outages: (last answered send time, next answered send time) around each run of losses.

        Losses before the first answer or after the last are not gaps (nothing was serving yet, or
        the outage has not ended); see `answered` and `samples` for those.
        """
        found = []
        last_ok: float | None = None
        lost = False
        for ts, host in self.samples:
            if host is None:
                lost = True
                continue
            if lost and last_ok is not None:
                found.append((last_ok, ts))
            last_ok, lost = ts, False
        return found

    def longest_gap(self) -> float:
        return max((b - a for a, b in self.gaps()), default=0.0)

    def holders(self) -> list[str]:
        """Answering hosts in order, consecutive repeats folded: ['server1', 'server2', 'server1']."""
        seq: list[str] = []
        for _unused, host in self.samples:
            if host is not None and (not seq or seq[-1] != host):
                seq.append(host)
        return seq

    @property
    def answered(self) -> int:
        return sum(1 for _unused, h in self.samples if h is not None)


class Probe:
    """A running probe: responders on the hosts, the prober on the client. Use `stop()` once."""

    def __init__(self, out: Path, prober: subprocess.Popen, responders: Sequence[Callable[[], None]]):
        self._out = out
        self._prober = prober
        self._stop_responders = responders
        self.result: ProbeResult | None = None

    def snapshot(self) -> ProbeResult:
        """What was recorded so far; the last few samples may still be in flight."""
        return ProbeResult.parse(self._out.read_text())

    def wait_for(self, host: str, timeout: float = 10, after: float | None = None) -> float:
        """Block until `host` answers a probe sent after `after` (default: now); return that send time."""
        after = time.monotonic() if after is None else after
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.snapshot().first_answer_from(host, after)
            if t is not None:
                return t
            time.sleep(0.02)
        raise TimeoutError(f"{host} did not answer on the probe within {timeout}s")

    def stop(self) -> ProbeResult:
        if self.result is None:
            stop_proc(self._prober)
            for stop in self._stop_responders:
                stop()
            self.result = ProbeResult.parse(self._out.read_text())
        return self.result


class ArpFrame(NamedTuple):
    time: float  # client monotonic receive time
    op: int  # 1 request, 2 reply
    sender_mac: str
    sender_ip: str
    target_ip: str

    @property
    def gratuitous(self) -> bool:
        return self.sender_ip == self.target_ip


class ArpWatch:
    """ARP frames that reached the client's interface, as the client saw them."""

    def __init__(self, out: Path, proc: subprocess.Popen):
        self._out = out
        self._proc = proc

    def frames(self) -> list[ArpFrame]:
        found = []
        for line in self._out.read_text().splitlines()[1:]:
            t, op, mac, sip, tip = line.split()
            found.append(ArpFrame(float(t), int(op), mac, sip, tip))
        return found

    def gratuitous_from(self, ip: str, after: float = 0.0) -> list[ArpFrame]:
        return [f for f in self.frames() if f.gratuitous and f.sender_ip == ip and f.time >= after]

    def stop(self) -> list[ArpFrame]:
        stop_proc(self._proc)
        return self.frames()
