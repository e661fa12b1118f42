"""One trial of one contender at one timer set, seen from the client's probe.

The phases run in a fixed order on one probe: joint start (first service), planned switchover and back,
power loss of the primary and its return (takeover, outage, failback), then a daemon-only `kill -9` of
the primary and its restart (takeover, stale-VIP blackhole). Event times are taken on the same
monotonic clock the probe uses; every number is computed afterwards from the probe's own record.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from lab import Lab
from lab.node import Host
from lab.probe import Probe

from bench import measure, service
from bench.contenders.base import BACKUP, PRIMARY, Contender
from bench.timers import TimerSet

PROBE_INTERVAL = 0.005
BLACKHOLE_WAIT_S = 120
ALL_PHASES = ("start", "planned", "power", "kill")
#: The service-death scenario: the service runs on both hosts under a check; the primary's dies.
SERVICE_PHASES = ("start", "service")
# /run entries a reboot would not clear in the lab (the lab's own skeleton).
_LAB_RUN = {"lock", "sshd"}

Metrics = dict[str, float | str | None]


def settle_s(timers: TimerSet) -> float:
    """Long enough for the backup to have heard the primary for a whole deadtime before the next fault."""
    return max(1.0, timers.deadtime_s)


def clear_run(host: Host) -> None:
    """What a reboot does to /run (pidfiles, sockets, resource state): gone."""
    for entry in host.path("/run").iterdir():
        if entry.name in _LAB_RUN:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def drop_vips(host: Host) -> None:
    for addr in host.addresses():
        if addr != f"{host.address}/{Lab.prefix_len}":
            host.run(["ip", "addr", "del", addr, "dev", host.iface])


def reset(lab: Lab, contender: Contender) -> None:
    """Both hosts back to freshly booted and idle, the client's ARP cache empty."""
    for host in lab.hosts.values():
        contender.kill9(host)
        host.power_on()
        drop_vips(host)
        clear_run(host)
    assert lab.client is not None
    lab.client.run(["ip", "neigh", "flush", "dev", lab.client.iface], check=False)


def start_both(contender: Contender, lab: Lab) -> None:
    """Both daemons launched at the same moment, as after a power cut of the whole rack."""
    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(contender.start, h) for h in lab.hosts.values()]:
            f.result()


class Trial:
    """Runs the phases, keeps event times, turns the probe record into metrics."""

    def __init__(self, lab: Lab, contender: Contender, timers: TimerSet, vips: Sequence[str],
                 service_phase: float = 0.5) -> None:
        self.lab, self.c, self.timers, self.vips = lab, contender, timers, vips
        self.service_phase = service_phase
        self.s1, self.s2 = lab.hosts[PRIMARY], lab.hosts[BACKUP]
        self.events: dict[str, float] = {}
        self.error: str | None = None
        self.services: dict[str, subprocess.Popen] = {}

    def run(self, phases: Sequence[str] = ALL_PHASES) -> Metrics:
        began = time.monotonic()
        reset(self.lab, self.c)
        self.c.install(self.timers, self.vips)
        if "service" in phases:
            self._services_up()
        probe = self.lab.probe(interval=PROBE_INTERVAL)
        try:
            for phase in phases:
                getattr(self, f"_{phase}")(probe)
        except (TimeoutError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
            # One failed trial is a data point (counted as failed), not the end of the bench.
            self.error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            probe.stop()
            for name, proc in self.services.items():
                service.kill(self.lab.hosts[name], proc)
            reset(self.lab, self.c)
        metrics = self.metrics(measure.Record.parse(measure.probe_log(probe).read_text()))
        metrics["duration_s"] = round(time.monotonic() - began, 1)
        return metrics

    # phases -------------------------------------------------------------------------------------
    def _mark(self, name: str) -> float:
        self.events[name] = time.monotonic()
        return self.events[name]

    def _wait(self, probe: Probe, host: Host, after: float, timeout: float) -> float:
        """Timeouts grow with the group: Heartbeat runs one IPaddr script per VIP, one after another."""
        return probe.wait_for(host.name, timeout=timeout + 1.5 * len(self.vips), after=after)

    def _start(self, probe: Probe) -> None:
        t = self._mark("start")
        start_both(self.c, self.lab)
        self._wait(probe, self.s1, t, 2 * self.timers.initdead_ms / 1000 + 20)
        time.sleep(settle_s(self.timers))

    def _planned(self, probe: Probe) -> None:
        t = self._mark("standby")
        self.c.standby(self.s1)
        self._wait(probe, self.s2, t, self.timers.deadtime_s + 20)
        time.sleep(settle_s(self.timers))
        t = self._mark("unstandby")
        self.c.unstandby(self.s1)
        self._wait(probe, self.s1, t, self.timers.deadtime_s + 20)
        time.sleep(settle_s(self.timers))

    def _power(self, probe: Probe) -> None:
        t = self._mark("power_loss")
        self.c.kill9(self.s1)
        self.s1.power_loss()
        self._wait(probe, self.s2, t, self.timers.deadtime_s + 20)
        time.sleep(settle_s(self.timers))
        clear_run(self.s1)
        self.s1.power_on()
        t = self._mark("power_on")
        self.c.start(self.s1)
        self._wait(probe, self.s1, t, 2 * self.timers.initdead_ms / 1000 + 20)
        time.sleep(settle_s(self.timers))

    def _kill(self, probe: Probe) -> None:
        t = self._mark("kill9")
        self.c.kill9(self.s1)
        self._wait(probe, self.s2, t, self.timers.deadtime_s + 20)
        time.sleep(settle_s(self.timers))
        t = self._mark("restart")
        self.c.start(self.s1)
        # A restarted daemon that finds its VIP still configured may neither re-add nor announce it
        # (Heartbeat's IPaddr says "Running OK"): the client then keeps the peer's MAC until its ARP
        # entry ages out (tens of seconds). That blackhole is what this phase measures, so wait it out.
        self._wait(probe, self.s1, t, 2 * self.timers.initdead_ms / 1000 + BLACKHOLE_WAIT_S)
        time.sleep(settle_s(self.timers))
        self._mark("kill9_end")

    def _services_up(self) -> None:
        """The service and its check on both hosts, before the daemons start (so both start healthy)."""
        self.c.install_check(service.CHECK)
        for host in self.lab.hosts.values():
            service.install(host)
            self.services[host.name] = service.start(host)

    def _service(self, probe: Probe) -> None:
        # The service dies at `service_phase` of a check interval after the settle: across trials the
        # phases are spread evenly, so no contender's check schedule happens to sit just before (or
        # just after) the death in every trial; the same phases for every contender.
        time.sleep(self.service_phase * service.CHECK.interval_s)
        t = self._mark("service_death")
        service.kill(self.s1, self.services[PRIMARY])
        self._wait(probe, self.s2, t, service.CHECK.detect_s + self.timers.deadtime_s + 20)
        time.sleep(settle_s(self.timers))

    # numbers ------------------------------------------------------------------------------------
    def metrics(self, rec: measure.Record) -> Metrics:
        ev, iv = self.events, PROBE_INTERVAL
        s1, s2 = PRIMARY, BACKUP
        out: Metrics = {"error": self.error}

        def since(key: str, host: str | None) -> float | None:
            t = rec.first_answer(ev[key], host) if key in ev else None
            return None if t is None else t - ev[key]

        def gap(key: str, src: str, dst: str) -> float | None:
            return rec.handoff_gap(src, dst, ev[key], iv) if key in ev else None

        if "start" in ev:
            out["first_service"] = since("start", None)
            out["first_holder"] = next((h for t, h, _unused in rec.answers if t >= ev["start"]), None)
        if "standby" in ev:
            out["planned_loss"] = gap("standby", s1, s2)
        if "power_loss" in ev:
            out["takeover_power"] = since("power_loss", s2)
            out["outage_power"] = gap("power_loss", s1, s2)
        if "power_on" in ev:
            out["failback_gap"] = gap("power_on", s2, s1)
            out["failback_serving"] = since("power_on", s1)
        if "kill9" in ev:
            out["takeover_kill9"] = since("kill9", s2)
        if "service_death" in ev:
            out["takeover_service"] = since("service_death", s2)
            out["outage_service"] = gap("service_death", s1, s2)
        if "kill9" in ev:
            # Without an end mark the service never came back: everything lost up to the last probe.
            end = ev.get("kill9_end", max(rec.sent.values(), default=ev["kill9"]) + iv)
            out["blackhole_kill9"] = rec.lost(ev["kill9"], end, iv)
        out["holders"] = "→".join(rec.holders())
        return out


def run_trial(lab: Lab, contender: Contender, timers: TimerSet, vips: Sequence[str],
              phases: Sequence[str] = ALL_PHASES, service_phase: float = 0.5) -> Metrics:
    return Trial(lab, contender, timers, vips, service_phase).run(phases)
