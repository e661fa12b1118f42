"""Running the health probes: checks as shell commands, monitors as `SCRIPT status`, tracked links by
netlink; the verdicts are the pure `Health`'s (`hbvip.cluster.health`).

The edge of service health: each command runs in its own process group and is killed (TERM, then KILL)
at its `timeout`, which counts as a failure; the node hears an `Eligibility` event only when the
categories this node may hold change. A reload rebuilds the probes (`reconfigure`): what is kept, what
starts fresh and what goes is the pure plan's (`hbvip.cluster.reload.probe_changes`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Collection
from pathlib import Path

from .clock import Clock
from .cluster import Eligibility, Event, Hold
from .cluster.health import Banned, Health, HealthAction, Probe, ProbeKind, Restart
from .cluster.reload import ProbeKey
from .config import Config
from .log import EventLog
from .net.links import link_up, vip_interfaces
from .records import replace
from .resources.runner import ResourceRunner
from .resources.scripts import SCRIPT_PATH, run_script
from .turns import TaskSet

#: How often tracked links are read (a dump of a few interfaces; milliseconds of CPU a minute).
LINK_POLL = 0.5
_SHELL = Path("/bin/sh")


def health_for(config: Config, now: float, interfaces: dict[str, frozenset[str]]) -> Health:
    ext = config.ext
    return Health.from_config(me=config.node_name, groups=config.groups, checks=ext.checks, monitors=ext.monitors,
                              tracks=ext.track_interfaces, vip_interfaces=interfaces, now=now)


class HealthWatch:
    """The probe loop of one node. `held` names the groups this node holds and serves right now."""

    def __init__(self, *, config: Callable[[], Config], runner: ResourceRunner, clock: Clock,
                 log: EventLog, tasks: TaskSet, held: Callable[[], list[str]], feed: Callable[[Event], None]) -> None:
        self.health = health_for(config(), clock.monotonic(), {})
        self._config = config
        self.runner = runner
        self.clock = clock
        self.log = log
        self.tasks = tasks
        self._held = held
        self._feed = feed
        self._published: tuple[Hold, str] = (Hold.ALL, "")
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self.tasks.spawn(self.run())

    def stop(self) -> None:
        """A reload removed every health line: no probe is left, so the node is eligible for everything
        (published before the loop ends); results still in flight are dropped."""
        self.health = Health(self.health.me, self.health.groups)
        self.publish()
        if self._task is not None:
            self._task.cancel()

    async def reconfigure(self, renew: Collection[ProbeKey]) -> None:
        """A reload: build the probes of the running config; those in `renew` (new or changed lines)
        start fresh, the others keep their state. Eligibility follows at once."""
        config = self._config()
        interfaces = await vip_interfaces(config.groups) if config.ext.track_interfaces else {}
        self.health.reconfigure(health_for(config, self.clock.monotonic(), interfaces), renew)
        self.publish()
        self.poke()

    async def run(self) -> None:
        """Probe until cancelled; the VIPs' interfaces are read first, for `track_interface`."""
        if self._config().ext.track_interfaces:
            await self.reconfigure(())
        while True:
            now = self.clock.monotonic()
            tracked = [p.name for p in self.health.probes.values() if p.kind is ProbeKind.LINK]
            for iface in tracked:
                up = await link_up(iface)
                probe = self.health.probes.get((ProbeKind.LINK, iface))
                if probe is not None and probe.last is not up:
                    self.log("warning" if not up else "info", "health.link",
                             f"Link {iface} is {'up' if up else 'down'}", {"iface": iface, "up": up})
                self.health.link(iface, up, now)
            for script in self.health.tick(now):
                self.log("info", "health.ban_lifted", f"monitor {script}: failure_timeout passed, eligible again",
                         {"script": script})
            for probe in self.health.due(now, self._held()):
                self.tasks.spawn(self._run(probe))
            self.publish()
            wait = self.health.next_deadline(self._held()) - self.clock.monotonic()
            wait = min(wait, LINK_POLL) if tracked else wait
            self._poke.clear()
            try:
                await asyncio.wait_for(self._poke.wait(), None if math.isinf(wait) else max(0.0, wait))
            except TimeoutError:
                pass

    def poke(self) -> None:
        """Something changed (a group was taken, a cleanup): look at what is due now."""
        self._poke.set()

    def cleanup(self, group: str) -> bool:
        found = self.health.cleanup(group)
        self.publish()
        self.poke()
        return found

    def publish(self) -> None:
        verdict = self.health.eligible()
        if verdict != self._published:
            self._published = verdict
            self._feed(Eligibility(*verdict))

    async def _run(self, probe: Probe) -> None:
        ok, detail = await (self._check(probe) if probe.kind is ProbeKind.CHECK else self._monitor(probe))
        if not self.health.current(probe):
            return          # a reload changed or removed it while it ran: the result is the old line's
        before = probe.healthy
        actions = self.health.result(probe.kind, probe.name, ok, self.clock.monotonic(), detail)
        if probe.kind is ProbeKind.CHECK and probe.healthy != before:
            if probe.healthy:
                self.log("info", "health.check_ok", f"check {probe.name} succeeded ({probe.streak} in a row)",
                         {"check": probe.name, "streak": probe.streak})
            else:
                self.log("warning", "health.check_failed", f"check {probe.name} failed ({probe.streak} in a row): {detail}",
                         {"check": probe.name, "streak": probe.streak, "detail": detail})
        for action in actions:
            await self._act(action)
        self.publish()
        self.poke()

    async def _check(self, probe: Probe) -> tuple[bool, str]:
        # The command is read from the running config; a probe whose line a reload changes is replaced,
        # so the command always belongs to the probe's own settings.
        command = next((c.command for c in self._config().ext.checks if c.name == probe.name), "true")
        call = await run_script(_SHELL, probe.name, ("-c", command), f"hbvip-check-{probe.name}",
                                timeout=probe.timeout, env={"PATH": SCRIPT_PATH, "LANG": "C"})
        if call.timed_out:
            return False, f"timed out after {probe.timeout:g} s (killed)"
        return call.rc == 0, f"exit {call.rc}" + (f": {call.stderr.strip()[:200]}" if call.stderr.strip() else "")

    def _resource(self, script: str, group: str):  # noqa: ANN202 - a ResourceGroup of the one resource
        g = next(g for g in self._config().groups if g.key == group)
        return replace(g, resources=tuple(r for r in g.resources if r.name == script))

    async def _monitor(self, probe: Probe) -> tuple[bool, str]:
        held = [k for k in probe.groups if k in self._held()]
        if not held:
            return True, "not held here"
        res = self._resource(probe.name, held[0]).resources[0]
        try:
            running = await asyncio.wait_for(self.runner.status(res), probe.timeout)
        except TimeoutError:
            return False, f"status timed out after {probe.timeout:g} s (killed)"
        return running, "running" if running else "not running"

    async def _act(self, action: HealthAction) -> None:
        if isinstance(action, Restart):
            self.log("warning", "health.restart",
                     f"monitor {action.script} failed: restarting it (restart {action.attempt})",
                     {"script": action.script, "group": action.group, "attempt": action.attempt})
            one = self._resource(action.script, action.group)
            await self.runner.release(one)
            result = await self.runner.acquire(one)
            self.health.restarted(action.script, self.clock.monotonic())
            if not result.ok:
                self.log("error", "health.restart_failed", f"monitor {action.script}: restart failed",
                         {"script": action.script})
        elif isinstance(action, Banned):
            until = "until `hbvip cleanup`" if math.isinf(action.until) else \
                f"for {action.until - self.clock.monotonic():.0f} s (failure_timeout)"
            self.log("error", "health.banned", f"monitor failed: {action.script}: restarts used up, "
                     f"not eligible for its group {until}", {"script": action.script})
