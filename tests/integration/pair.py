"""The one pair harness: the real agent on two lab hosts with the seed's files, who serves the VIP, when,
in which script order. Tests get a `Pair` from the `pair` fixture (conftest.py), the fault suite from
`faults.running_pair`, the mixed Heartbeat/agent tests from `hbpeer.MixedPair`; all of them are this class.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from hbvip import control
from lab import Lab
from lab.node import Host
from lab.probe import Probe

SECRET = "labsecret-0123"          # obvious test key
HOSTS = ("server1", "server2")
AGENT = [sys.executable, "-m", "hbvip.cli"]
FAILBACK_SH = """#!/bin/sh
# The seed's failback.sh stub, plus one line that logs each call: <time> <host> <action>
echo "$(date +%s.%N) $(uname -n) $1" >> /var/log/failback-calls.log
exit 0
"""


@dataclass(frozen=True)
class Timers:
    keepalive: str = "1"
    warntime: str = "3"
    deadtime: str = "5"
    initdead: str = "10"

    @property
    def deadtime_s(self) -> float:
        return _seconds(self.deadtime)

    @property
    def keepalive_s(self) -> float:
        return _seconds(self.keepalive)


SEED = Timers()
FAST = Timers("200ms", "500ms", "1", "2")


def _seconds(value: str) -> float:
    return float(value[:-2]) / 1000 if value.endswith("ms") else float(value)


SEED_MEDIA = "ucast eth0 server1\nucast eth0 server2\n"


def ha_cf(timers: Timers, auto_failback: str = "on", media: str = SEED_MEDIA) -> str:
    return f"""logfile /var/log/ha-log
debugfile /var/log/ha-debug
autojoin none
{media.rstrip()}
udpport 694
warntime {timers.warntime}
deadtime {timers.deadtime}
initdead {timers.initdead}
keepalive {timers.keepalive}
node server1 server2
auto_failback {auto_failback}
"""


def install(lab: Lab, timers: Timers = SEED, *, auto_failback: str = "on", secret: str = SECRET,
            hosts: tuple[str, ...] = ("server1", "server2"), authkeys_mode: int = 0o600,
            haresources: str | None = None, media: str = SEED_MEDIA) -> None:
    """The seed's four files, identical on both hosts (the how-to's whole /etc/ha.d); `haresources`
    replaces the seed's group line (a dual-stack group, say), `media` its heartbeat lines."""
    for name in hosts:
        h = lab.hosts[name]
        h.write("/etc/ha.d/ha.cf", ha_cf(timers, auto_failback, media))
        h.write("/etc/ha.d/haresources", haresources or f"server1 IPaddr::{lab.vip}/24/eth0 failback.sh\n")
        h.write("/etc/ha.d/authkeys", f"auth 1\n1 sha1 {secret}\n", mode=authkeys_mode)
        h.write("/etc/ha.d/resource.d/failback.sh", FAILBACK_SH, mode=0o755)


class Agent:
    """One `hbvip run` on a lab host."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.proc: subprocess.Popen | None = None
        self.out = host.path("/var/log/hbvip-stderr.log")

    def start(self) -> Agent:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        sock = self.host.path("/run/hbvip/control.sock")
        if sock.exists():          # left by a SIGKILLed agent; it must not count as "started"
            sock.unlink()
        with open(self.out, "ab") as f:
            self.proc = self.host.spawn(AGENT + ["run", "--log-stderr"], stdout=f, stderr=subprocess.STDOUT)
        wait_until(lambda: sock.exists() or self.proc.poll() is not None, 10, f"hbvip on {self.host.name} to start")
        if self.proc.poll() is not None:
            raise AssertionError(f"hbvip on {self.host.name} exited {self.proc.returncode}:\n{self.out.read_text()}")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.host.kill(self.proc, sig)

    def wait(self, timeout: float = 15) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.host.kill(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.host.kill(self.proc, signal.SIGKILL)
                self.proc.wait(5)

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.host.run(AGENT + list(args), check=check, timeout=timeout)

    def status(self) -> dict:
        return status_of(self.host)

    def ha_log(self) -> str:
        p = self.host.path("/var/log/ha-log")
        return p.read_text() if p.exists() else ""


def peer_of(name: str) -> str:
    return HOSTS[1] if name == HOSTS[0] else HOSTS[0]


def has_vip(lab: Lab, name: str) -> bool:
    return lab.hosts[name].has_address(lab.vip)


def has_vip6(lab: Lab, name: str) -> bool:
    return lab.hosts[name].has_address(lab.vip6)


def calls(lab: Lab) -> list[tuple[float, str, str]]:
    """failback.sh calls of every host, merged by time: (time, host, action)."""
    out = []
    for h in lab.hosts.values():
        p = h.path("/var/log/failback-calls.log")
        if p.exists():
            for line in p.read_text().split("\n"):
                if line.strip():
                    t, host, action = line.split()
                    out.append((float(t), host, action))
    return sorted(out)


T = TypeVar("T")


def status_of(host: Host, run_dir: str = "/run/hbvip") -> dict:
    """What `hbvip status --json` prints on `host`, asked over the agent's control socket with the client
    the CLI uses (`hbvip.control.call`). Tests poll it: a CLI process per poll cost ~0.1 CPU-s, so a
    20 ms wait loop kept a core busy. The CLI itself is tested where its output is the point."""
    answer = control.call(host.path(run_dir), {"cmd": "status"}, timeout=30)
    assert answer.get("ok"), f"hbvip status on {host.name}: {answer.get('error')}"
    return answer["status"]


def wait_until(pred: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def holds_for(pred: Callable[[], object], seconds: float, what: str, interval: float = 0.05) -> None:
    """`pred` stays true for `seconds` (checked every `interval`): a steady state, not a settle wait."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not pred():
            raise AssertionError(f"{what} stopped holding after {seconds - (end - time.monotonic()):.2f} s")
        time.sleep(interval)


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
        if self._thread.is_alive():
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
    """Two lab hosts and the agents on them, the instruments a test reads (a client probe, a holder watch),
    and the clean-up of every process it started (`close`, called by the fixtures)."""

    lab: Lab
    timers: Timers = FAST
    agents: dict[str, Agent] = field(default_factory=dict)
    watch: HolderWatch = field(init=False)
    config_before: dict[str, bytes] = field(default_factory=dict)
    crashes: list[tuple[float, str]] = field(default_factory=list)
    _probe: Probe | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.watch = HolderWatch(self.lab)

    # ---- set-up ------------------------------------------------------------------------------
    def install(self, timers: Timers | None = None, **kw: object) -> Pair:
        """The seed's files on both hosts (see `install`); `timers` become the pair's."""
        self.timers = timers or self.timers
        install(self.lab, self.timers, **kw)  # type: ignore[arg-type]
        return self

    def agent(self, name: str) -> Agent:
        """The agent of host `name`, started (again, after a crash or a stop)."""
        a = self.agents.setdefault(name, Agent(self.lab.hosts[name]))
        return a.start()

    def start(self, timers: Timers | None = None, **install_kw: object) -> tuple[Agent, Agent]:
        """Install the seed's files and start both agents (server1 first)."""
        self.install(timers, **install_kw)
        return self.agent("server1"), self.agent("server2")

    # ---- what a test reads -------------------------------------------------------------------
    @property
    def probe(self) -> Probe:
        """The client's probe of the VIP, started on first use."""
        if self._probe is None:
            self._probe = self.lab.probe()
        return self._probe

    def serves(self, name: str, after: float, timeout: float = 15) -> float:
        """Seconds from `after` until `name` answers on the VIP."""
        return self.probe.wait_for(name, timeout=timeout, after=after) - after

    @property
    def deadline(self) -> float:
        """What the issue holds every fault to: deadtime + 2 x keepalive after the fault settles."""
        return self.timers.deadtime_s + 2 * self.timers.keepalive_s

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

    # ---- faults and the end ------------------------------------------------------------------
    def crash(self, name: str, *, power: bool = False) -> None:
        """SIGKILL the agent on `name` (power=True: the whole host goes dark, VIP gone)."""
        self.crashes.append((time.time(), name))
        if power:
            self.host(name).power_loss([self.agents[name].proc])
        else:
            self.agents[name].kill(signal.SIGKILL)

    def close(self) -> None:
        self.watch.stop()
        if self._probe is not None:
            self._probe.stop()
        for a in self.agents.values():
            a.stop()
