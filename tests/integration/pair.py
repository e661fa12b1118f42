"""Run the real agent on lab hosts with the seed's files: the integration tests' vocabulary."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from lab import Lab
from lab.node import Host

SECRET = "labsecret-0123"          # obvious test key
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


def ha_cf(timers: Timers, auto_failback: str = "on") -> str:
    return f"""logfile /var/log/ha-log
debugfile /var/log/ha-debug
autojoin none
ucast eth0 server1
ucast eth0 server2
udpport 694
warntime {timers.warntime}
deadtime {timers.deadtime}
initdead {timers.initdead}
keepalive {timers.keepalive}
node server1 server2
auto_failback {auto_failback}
"""


def install(lab: Lab, timers: Timers = SEED, *, auto_failback: str = "on", secret: str = SECRET,
            hosts: tuple[str, ...] = ("server1", "server2"), authkeys_mode: int = 0o600) -> None:
    """The seed's four files, identical on both hosts (the how-to's whole /etc/ha.d)."""
    for name in hosts:
        h = lab.hosts[name]
        h.write("/etc/ha.d/ha.cf", ha_cf(timers, auto_failback))
        h.write("/etc/ha.d/haresources", f"server1 IPaddr::{lab.vip}/24/eth0 failback.sh\n")
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
        return json.loads(self.cli("status", "--json").stdout)

    def ha_log(self) -> str:
        p = self.host.path("/var/log/ha-log")
        return p.read_text() if p.exists() else ""


def has_vip(lab: Lab, name: str) -> bool:
    return any(a.startswith(lab.vip + "/") for a in lab.hosts[name].addresses())


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


def wait_until(pred: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
