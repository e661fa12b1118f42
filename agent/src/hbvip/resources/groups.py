"""Carrying out the failover machine's resource actions on groups: acquire and release a category's
groups in haresources order, re-announce held VIPs, apply a reload's group changes, clean up VIPs a
crash left behind, and refresh GARP while holding.

The machine decides per category (`Hold`); this is where a category becomes its groups, where each
group's history for `hbvip status` is recorded, and where the finished work is reported back as
`ResourcesDone`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..clock import Clock
from ..cluster import Hold, Op, ResourcesDone
from ..cluster.groups import groups_of
from ..config import Config, ResourceGroup
from ..log import EventLog
from ..records import dataclass, field
from ..turns import TaskSet
from ..views import GroupHistoryView
from .runner import ResourceRunner, remove_stale_vips

#: A periodic GARP refresh sends one request and one reply (stacks differ in which one they learn from).
REFRESH_FRAMES = 2


@dataclass
class _GroupRecord:
    """A group's history for `hbvip status`: transitions and the last takeover."""
    transitions: int = 0
    last_takeover_at: float | None = None
    last_takeover_s: float | None = None


@dataclass
class GroupHistory:
    """Per group: how often this node's hold on it changed, and its last takeover (when, how long).

    The failover machine reasons in categories (local/foreign); operators ask about groups, so the
    daemon records each group's acquire and release here as it carries them out.
    """

    _groups: dict[str, _GroupRecord] = field(default_factory=dict)

    def acquired(self, key: str, decided_at: float, now: float, wall: float) -> None:
        """`decided_at` and `now` are monotonic, `wall` is now on the wall clock (for `hbvip status`):
        `decided_at` is when the move was decided, so the duration is what clients felt."""
        rec = self._groups.setdefault(key, _GroupRecord())
        rec.transitions += 1
        rec.last_takeover_at = wall
        rec.last_takeover_s = round(max(0.0, now - decided_at), 3)

    def released(self, key: str) -> None:
        self._groups.setdefault(key, _GroupRecord()).transitions += 1

    def fields(self, key: str) -> GroupHistoryView:
        rec = self._groups.get(key, _GroupRecord())
        return {"transitions": rec.transitions, "last_takeover_at": rec.last_takeover_at,
                "last_takeover_s": rec.last_takeover_s}


class GroupWork:
    """One node's resource work. `config` is read at each use: a reload replaces it."""

    def __init__(self, runner: ResourceRunner, *, config: Callable[[], Config], log: EventLog, clock: Clock,
                 tasks: TaskSet, done: Callable[[ResourcesDone], None],
                 idle_hold: Callable[[], Hold | None]) -> None:
        self.runner = runner
        self._config = config
        self.log = log
        self.clock = clock
        self.tasks = tasks
        self._done = done
        self._idle_hold = idle_hold          # what this node holds, None while a move is under way
        self.stale_cleanup: asyncio.Task[None] | None = None
        self.takeover_started: float | None = None
        self.last_takeover: dict[str, float] = {}
        self.history = GroupHistory()
        self._garp_refresh: asyncio.Task[None] | None = None

    def groups(self, hold: Hold) -> list[ResourceGroup]:
        cfg = self._config()
        return groups_of(cfg.groups, cfg.node_name, hold)

    # ---- the machine's actions --------------------------------------------------------------------
    def acquire(self, hold: Hold, reason: str) -> None:
        if hold & Hold.FOREIGN and self.takeover_started is None:
            self.takeover_started = self.clock.monotonic()
        self.tasks.spawn(self.acquire_now(hold, reason))

    def release(self, hold: Hold, reason: str) -> None:
        self.tasks.spawn(self._release(hold, reason))

    def announce(self, hold: Hold) -> None:
        """Split-brain heal: the runner announces each VIP where it placed it (bursts run in the background)."""
        for group in self.groups(hold):
            self.runner.announce(group)

    async def acquire_now(self, hold: Hold, reason: str) -> None:
        if self.stale_cleanup is not None:
            await self.stale_cleanup       # else it could remove the VIP we are about to add
        ok, detail = True, ""
        started = self.clock.monotonic()
        decided = self.takeover_started if hold & Hold.FOREIGN and self.takeover_started is not None else started
        for group in self.groups(hold):
            self.log("info", "group.acquire", f"Acquiring resource group: {group.home_node} "
                     + " ".join(r.spec for r in group.resources), {"group": group.key, "reason": reason})
            result = await self.runner.acquire(group)
            if result.ok:
                self.history.acquired(group.key, decided, self.clock.monotonic(), self.clock.wall())
            if not result.ok:
                ok = False
                failed = result.failed
                detail = f"{group.key}: {failed.resource} {failed.action} rc={failed.rc}" if failed else group.key
        took = self.clock.monotonic() - started
        if hold & Hold.FOREIGN and self.takeover_started is not None:
            self.last_takeover = {"at": self.clock.wall(),
                                  "ms": round((self.clock.monotonic() - self.takeover_started) * 1000)}
            self.takeover_started = None
        self.log("info", "resources.acquired", None, {"hold": hold.word, "ok": ok, "ms": round(took * 1000)})
        self._done(ResourcesDone(Op.ACQUIRE, hold, ok, detail))

    async def _release(self, hold: Hold, reason: str) -> None:
        ok, details = True, []
        for group in reversed(self.groups(hold)):
            self.log("info", "group.release", f"Releasing resource group: {group.home_node} "
                     + " ".join(r.spec for r in group.resources), {"group": group.key, "reason": reason})
            result = await self.runner.release(group)
            self.history.released(group.key)     # the VIP is gone even when a stop failed
            if not result.ok:
                ok = False
                details += [f"{c.resource} {c.action} rc={c.rc}" for c in result.failed]
        self._done(ResourcesDone(Op.RELEASE, hold, ok, "; ".join(details)))

    # ---- start-up, reload, refresh ----------------------------------------------------------------
    def start_cleanup(self, started: asyncio.Task[None] | None = None) -> None:
        """We hold nothing at start: any copy of a VIP here is stale (e.g. left by kill -9). Removing them
        overlaps with opening the sockets and meeting the peer; an acquisition waits for it. `started`:
        the daemon's removal, begun before this object existed (see hbvip.daemon)."""
        self.stale_cleanup = started or self.tasks.spawn(self.cleanup_stale())

    async def cleanup_stale(self) -> None:
        await remove_stale_vips(self.runner, self._config().groups)

    async def regroup(self, release: Sequence[ResourceGroup], acquire: Sequence[ResourceGroup]) -> None:
        """Apply a reload's group changes to the groups this node holds; others are left alone."""
        if self.stale_cleanup is not None:
            await self.stale_cleanup
        for group in reversed(release):
            self.log("info", "group.release", None, {"group": group.key, "reason": "reload"})
            await self.runner.release(group)
            self.history.released(group.key)
        for group in acquire:
            self.log("info", "group.acquire", None, {"group": group.key, "reason": "reload"})
            started = self.clock.monotonic()
            if (await self.runner.acquire(group)).ok:
                self.history.acquired(group.key, started, self.clock.monotonic(), self.clock.wall())

    def retune(self, config: Config) -> None:
        """A reload's script timeout and GARP settings; the refresh starts or stops with `garp_refresh`."""
        self.runner.script_timeout = config.ext.script_timeout
        self.runner.garp_count, self.runner.garp_interval = config.ext.garp_count, config.ext.garp_interval
        self.start_garp_refresh()

    def start_garp_refresh(self) -> None:
        if self._config().ext.garp_refresh > 0 and (self._garp_refresh is None or self._garp_refresh.done()):
            self._garp_refresh = self.tasks.spawn(self._refresh_garp())

    async def _refresh_garp(self) -> None:
        """hbvip.cf `garp_refresh`: while holding, announce each native VIP again every period, so a
        client or switch whose ARP entry expired, or that missed the takeover burst, stays on this MAC.
        Ends when a reload sets it to 0; a reload that sets it again starts it again."""
        while (period := self._config().ext.garp_refresh) > 0:
            await asyncio.sleep(period)
            held = self._idle_hold()
            if held is None:
                continue                 # a release may be under way: never announce what is going away
            for group in self.groups(held):
                self.runner.announce(group, count=REFRESH_FRAMES, quiet=True)
