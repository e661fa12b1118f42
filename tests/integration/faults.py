"""The fault suite's vocabulary: a watched pair, faults injected with nft/signals/taskset, and the checks
every fault ends with (one holder, the client reaches it, scripts in order, config untouched, no secret).

Kept apart from the test files so the fast subset (test_faults.py) and the soak (test_soak*.py) share one
definition of "the pair survived".
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lab import Lab
from lab.node import Host
from pair import FAST, SECRET, Agent, Timers, calls, has_vip, install, wait_until

HOSTS = ("server1", "server2")
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
NFT_TABLE = "hbfault"
UDP_PORT = 694


def peer_of(name: str) -> str:
    return HOSTS[1] if name == HOSTS[0] else HOSTS[0]


class HolderWatch:
    """Samples which hosts carry the VIP every `interval` s, so a test can see split brain and settle time."""

    def __init__(self, lab: Lab, interval: float = 0.05) -> None:
        self.lab = lab
        self.interval = interval
        self.samples: list[tuple[float, frozenset[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> HolderWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                held = frozenset(h for h in HOSTS if has_vip(self.lab, h))
            except (subprocess.SubprocessError, RuntimeError):
                held = frozenset({"?"})
            self.samples.append((t, held))
            self._stop.wait(self.interval)

    def max_holders(self, after: float, before: float = float("inf")) -> int:
        return max((len(h) for t, h in list(self.samples) if after <= t <= before), default=0)


@dataclass
class Pair:
    """Two agents on a lab with the seed's files and FAST timers, plus the instruments a fault test reads."""

    lab: Lab
    timers: Timers
    agents: dict[str, Agent]
    watch: HolderWatch
    config_before: dict[str, bytes] = field(default_factory=dict)
    crashes: list[tuple[float, str]] = field(default_factory=list)

    @property
    def deadline(self) -> float:
        """What the issue holds every fault to: deadtime + 2 x keepalive after the fault settles."""
        return self.timers.deadtime_s + 2 * self.timers.keepalive_s

    def crash(self, name: str, *, power: bool = False) -> None:
        """SIGKILL the agent on `name` (power=True: the whole host goes dark, VIP gone)."""
        self.crashes.append((time.time(), name))
        if power:
            self.host(name).power_loss([self.agents[name].proc])
        else:
            self.agents[name].kill(signal.SIGKILL)

    def host(self, name: str) -> Host:
        return self.lab.hosts[name]

    def holders(self) -> set[str]:
        return {h for h in HOSTS if has_vip(self.lab, h)}

    def settle(self, expect: str, since: float, timeout: float, hold_for: float | None = None) -> float:
        """Wait until exactly `expect` holds the VIP and keeps it for `hold_for` s; return when that began."""
        hold_for = 3 * self.timers.keepalive_s if hold_for is None else hold_for
        end = time.monotonic() + timeout + hold_for + 1
        began: float | None = None
        while time.monotonic() < end:
            now = time.monotonic()
            if self.holders() == {expect}:
                began = now if began is None else began
                if now - began >= hold_for:
                    return began - since
            else:
                began = None
            time.sleep(0.03)
        raise AssertionError(f"no single holder {expect}: holders now {sorted(self.holders())}")

    def client_reaches(self, expect: str, timeout: float = 3.0) -> None:
        """The client's next probe of the VIP is answered by `expect` (its ARP entry points there)."""
        probe = self.lab.probe()
        try:
            probe.wait_for(expect, timeout=timeout)
        finally:
            probe.stop()

    def stable(self, timeout: float = 10.0) -> None:
        def both() -> bool:
            return all(a.proc and a.proc.poll() is None and a.status()["stable"] for a in self.agents.values())
        wait_until(both, timeout, "both agents stable", interval=0.1)


class WallClockAgent(Agent):
    """`hbvip run` under libfaketime: its CLOCK_REALTIME (time.time(), log stamps, the `ts` field) is
    shifted by the offset in FAKETIME_RC, which libfaketime re-reads on every call (FAKETIME_NO_CACHE),
    so `set_offset()` jumps the wall clock of the running agent. CLOCK_MONOTONIC stays real
    (FAKETIME_DONT_FAKE_MONOTONIC). This jumps one process's wall clock, never the machine's: `date -s`
    is not possible because CLOCK_REALTIME is not namespaced.

    libfaketime 0.9.10 with DONT_FAKE_MONOTONIC makes an absolute clock_nanosleep fail with EINVAL
    (Python's time.sleep); the agent's loop only waits in epoll, so it is not affected. Children (the
    resource scripts) inherit the preload: their `date` is shifted too.
    """

    FAKETIME_RC = "/run/hbvip-faketime.rc"

    def start(self) -> Agent:
        self.set_offset("+0")
        env = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": self.FAKETIME_RC,
               "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        spawn = self.host.spawn
        self.host.spawn = lambda cmd, **kw: spawn(cmd, **{**kw, "env": env})  # type: ignore[method-assign]
        try:
            return super().start()
        finally:
            del self.host.spawn

    def set_offset(self, offset: str) -> None:
        """e.g. "+1h", "-1h", "+0"; written atomically, so the agent never reads a half-written file."""
        tmp = self.host.write(self.FAKETIME_RC + ".new", offset + "\n")
        tmp.replace(self.host.path(self.FAKETIME_RC))


def heartbeat_ts(receiver: Host, sender: Host, timeout: float = 3.0) -> int:
    """The `ts` field (sender's wall clock, seconds) of the next heartbeat `receiver` gets from `sender`."""
    r = receiver.run(["timeout", str(timeout), "tcpdump", "-i", receiver.iface, "-nn", "-l", "-A", "-c", "1",
                      f"udp dst port {UDP_PORT} and src host {sender.address}"], check=False)
    found = re.search(r"\bts=([0-9a-fA-F]+)", r.stdout)
    if not found:
        raise AssertionError(f"no heartbeat from {sender.name} seen on {receiver.name}: {r.stdout[-500:]} {r.stderr}")
    return int(found.group(1), 16)


# ---- faults -------------------------------------------------------------------------------------------

def nft(host: Host, *rules: str) -> None:
    """Add `rules` (nft syntax after `add rule inet hbfault <chain>`) to the host's own fault table."""
    host.run(["nft", f"add table inet {NFT_TABLE}"])
    for chain in ("input", "output"):
        host.run(["nft", f"add chain inet {NFT_TABLE} {chain} {{ type filter hook {chain} priority 0 ; }}"])
    for rule in rules:
        host.run(["nft", f"add rule inet {NFT_TABLE} {rule}"])


def heal(*hosts: Host) -> None:
    for host in hosts:
        host.run(["nft", f"delete table inet {NFT_TABLE}"], check=False)


def deafen(host: Host, to: Host) -> None:
    """`host` no longer hears heartbeats from `to` (one direction of a partition)."""
    nft(host, f"input ip saddr {to.address} udp dport {UDP_PORT} drop")


def lossy(host: Host, percent: int) -> None:
    """Drop `percent` % of heartbeats arriving at `host` (tc netem is not available in this kernel)."""
    nft(host, f"input udp dport {UDP_PORT} numgen random mod 100 < {percent} drop")


@contextmanager
def busy_loops(host: Host, pid: int, count: int, cpu: int = 0) -> Iterator[None]:
    """Pin the agent (all its threads) to `cpu` and run `count` busy loops pinned beside it."""
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True, capture_output=True)
    hogs = [host.spawn(["taskset", "-c", str(cpu), "sh", "-c", "while :; do :; done"]) for _unused in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            host.kill(hog, signal.SIGKILL)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the checks every fault ends with -----------------------------------------------------------------

def script_order_problems(lab: Lab, *, overlap_allowed: bool = False,
                          crashes: list[tuple[float, str]] = ()) -> list[str]:
    """failback.sh calls must follow Heartbeat's order: status before start, and (unless split brain was the
    fault) no host starts while the other has started and not stopped. `crashes` are (wall time, host) of
    SIGKILLs and power losses: a dead host runs nothing any more, though nobody called its stop."""
    problems: list[str] = []
    running: dict[str, bool] = {h: False for h in HOSTS}
    last: dict[str, str | None] = {h: None for h in HOSTS}
    pending = sorted(crashes)
    for t, host, action in calls(lab):
        while pending and pending[0][0] <= t:
            running[pending.pop(0)[1]] = False
        if action == "start":
            if last[host] != "status":
                problems.append(f"{host}: start without status before it")
            other = peer_of(host)
            if running[other] and not overlap_allowed:
                problems.append(f"{host}: start while {other} still ran the resource")
            running[host] = True
        elif action == "stop":
            running[host] = False
        last[host] = action
    return problems


def config_snapshot(lab: Lab) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, host in lab.hosts.items():
        base = host.path("/etc/ha.d")
        for p in sorted(base.rglob("*")):
            if p.is_file():
                out[f"{name}:{p.relative_to(base)}"] = p.read_bytes()
    return out


def secret_leaks(lab: Lab, extra_outputs: list[str]) -> list[str]:
    """Every file the hosts wrote (logs, state, runtime) and every captured CLI output, searched for the key."""
    found = []
    for name, host in lab.hosts.items():
        for p in host.root.rglob("*"):
            if p.is_file() and not p.name == "authkeys":
                try:
                    if SECRET.encode() in p.read_bytes():
                        found.append(f"{name}:{p.relative_to(host.root)}")
                except OSError:
                    pass
    found += [f"cli output #{i}" for i, text in enumerate(extra_outputs) if SECRET in text]
    return found


@contextmanager
def running_pair(lab: Lab, timers: Timers = FAST, *, start: bool = True, extensions: str | None = None,
                 overlap_allowed: bool = False) -> Iterator[Pair]:
    """Install the seed's files, start both agents with server1 serving, and check the invariants at the end."""
    install(lab, timers)
    if extensions is not None:
        for host in lab.hosts.values():
            host.write("/etc/ha.d/hbvip.cf", extensions)
    agents = {h: Agent(lab.hosts[h]) for h in HOSTS}
    pair = Pair(lab, timers, agents, HolderWatch(lab))
    pair.config_before = config_snapshot(lab)
    try:
        if start:
            for a in agents.values():
                a.start()
            wait_until(lambda: pair.holders() == {"server1"}, 10, "server1 to serve the VIP")
            pair.stable()
        pair.watch.start()
        yield pair
        outputs = [a.cli("status", "--json", check=False).stdout for a in agents.values()
                   if a.proc and a.proc.poll() is None]
        outputs += [a.out.read_text() for a in agents.values() if a.out.exists()]
        order = script_order_problems(lab, overlap_allowed=overlap_allowed, crashes=pair.crashes)
        assert not order, order
        assert config_snapshot(lab) == pair.config_before, "the agent changed a file in /etc/ha.d"
        assert not secret_leaks(lab, outputs), secret_leaks(lab, outputs)
    finally:
        pair.watch.stop()
        for a in agents.values():
            a.stop()
        heal(*lab.hosts.values())
