"""The service-death scenario: a service runs on both hosts, a check watches it, the holder's dies.

The same check script, interval, fall and rise for every contender that has service checks (hbvip's
`check` in hbvip.cf, keepalived's `vrrp_script` + `track_script`); Heartbeat R1 has none, so it sits
this one out. keepalived takes whole seconds for `interval`, hence 1 s here. The service is a real
process whose pid the check probes with `kill -0`: killing it is the service dying, nothing else moves.
"""
from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass

from lab.node import Host

PIDFILE = "/run/bench-service.pid"
SCRIPT = "/etc/bench-service-check"


@dataclass(frozen=True)
class ServiceCheck:
    name: str = "bench_service"
    script: str = SCRIPT
    interval_s: int = 1
    timeout_s: int = 1
    fall: int = 2
    rise: int = 1

    @property
    def detect_s(self) -> float:
        """The longest a dead service can go unnoticed: `fall` failed runs, the first up to one interval late."""
        return self.interval_s * (self.fall + 1) + self.timeout_s


CHECK = ServiceCheck()


def install(host: Host, check: ServiceCheck = CHECK) -> None:
    """The check script: exit 0 while the service's process lives."""
    host.write(check.script, f'#!/bin/sh\nexec kill -0 "$(cat {PIDFILE})" 2>/dev/null\n', mode=0o755)


def start(host: Host) -> subprocess.Popen:
    """The service: one long-lived process, its pid where the check looks."""
    proc = host.spawn(["sleep", "100000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host.write(PIDFILE, f"{proc.pid}\n")
    return proc


def kill(host: Host, proc: subprocess.Popen) -> None:
    """The service dies (the check now fails on `host`); reaped at once so no zombie answers `kill -0`."""
    if proc.poll() is None:
        host.kill(proc, signal.SIGKILL)
