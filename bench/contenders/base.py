"""What a trial needs from a failover daemon: install, start, crash, planned switchover, find its pids."""
from __future__ import annotations

import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from lab import Lab
from lab.node import Host

from bench.service import ServiceCheck
from bench.timers import TimerSet

PRIMARY, BACKUP = "server1", "server2"


class Contender(ABC):
    """One daemon on both lab hosts. `primary` is the home node (highest priority); `backup` the other."""

    name: str = ""
    #: Where the daemon logs inside a host: a failed cell quotes its end (`log_tail`).
    log_file: str = "/var/log/ha-log"

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def supports(self, timers: TimerSet) -> bool:
        return True

    def checks_services(self) -> bool:
        """Whether it can move the VIP when a service check fails (the service-death scenario)."""
        return False

    def install_check(self, check: ServiceCheck) -> None:
        """Add `check` (after `install`): failing `fall` times makes a host give up the VIP."""
        raise NotImplementedError(f"{self.name} has no service checks")

    @abstractmethod
    def install(self, timers: TimerSet, vips: Sequence[str]) -> None:
        """Write the configuration for `vips` (first = the probed one) on both hosts."""

    @abstractmethod
    def start(self, host: Host) -> None:
        """Start the daemon and return once it runs (not once it serves)."""

    @abstractmethod
    def pids(self, host: Host) -> list[int]:
        """Every process of the daemon on `host`: footprint sums them, a crash kills them all."""

    @abstractmethod
    def standby(self, host: Host) -> None:
        """Planned switchover: `host` hands its VIPs to the peer."""

    @abstractmethod
    def unstandby(self, host: Host) -> None:
        """Undo `standby`: `host` takes its VIPs back."""

    def kill9(self, host: Host) -> None:
        """A crash: every process of the daemon dies at once. They are frozen first: a parent killed
        alone lets its children clean up (keepalived's VRRP child would send priority 0 and drop the VIP)."""
        pids = self.pids(host)
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                try:
                    host.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    # A short-lived child (a resource script) may exit between listing and kill; the
                    # lab then no longer sees it in the host and refuses. Only a live one is an error.
                    if _alive(pid) and host.owns_pid(pid):
                        raise
        self._reaped(host, pids)

    def log_tail(self, host: Host, lines: int = 12) -> str:
        """The last `lines` lines of the daemon's log on `host`, to say why a cell failed."""
        try:
            text = host.path(self.log_file).read_text(errors="replace")
        except OSError as exc:
            return f"({self.log_file}: {exc.strerror})"
        return "\n".join(text.splitlines()[-lines:])

    def _reaped(self, host: Host, pids: Sequence[int], timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while any(_alive(p) for p in pids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} on {host.name} did not die: {pids}")
            time.sleep(0.01)


def _alive(pid: int) -> bool:
    """Alive and not a zombie (our own children stay zombies until reaped elsewhere)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def procs_named(host: Host, comm: str) -> list[int]:
    """Processes called `comm` that live in `host`'s network namespace (there is no PID namespace)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry.path, "comm").read_text().strip() != comm:
                continue
        except OSError:
            continue
        pid = int(entry.name)
        if host.owns_pid(pid) and _alive(pid):
            found.append(pid)
    return found


def with_descendants(host: Host, roots: Sequence[int]) -> list[int]:
    """`roots` and every process they started that still lives in the host: Heartbeat's resource
    scripts run as children and would go on adding VIPs after their daemon was killed."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found and host.owns_pid(pid) and _alive(pid):
                found.add(pid)
                frontier.append(pid)
    return sorted(found)


def haresources(vips: Sequence[str]) -> str:
    """The seed's line, widened to any number of VIPs in one group (the scale test's 64)."""
    return f"{PRIMARY} " + " ".join(f"IPaddr::{v}/24/eth0" for v in vips) + " failback.sh\n"
