"""Service health, decided: which groups this node may hold, from check, monitor and link results.

Pure, like the rest of `cluster/`: results come in stamped with a monotonic time, and out come what to
run next (`due`), which monitored resource to restart (`Restart`) and the node's eligibility per
category (`eligible`, fed to the failover machine as an `Eligibility` event). Running the commands,
killing the ones that hang and reading link state are the edge's job (`hbvip.healthwatch`).

The rules (issue 18, keepalived's `vrrp_script` and Pacemaker's monitor operation):

* A check runs on both nodes. `fall` failures in a row make this node ineligible for the check's group
  (every group without `group`); `rise` successes in a row make it eligible again. A check starts
  healthy, as keepalived's scripts do, so a restart of hbvip does not move a group by itself.
* A monitor runs `SCRIPT status` only on the holder of a group with that script. `fall` failures in a
  row restart the script here, at most `restarts` times; the next `fall` failures ban this node from the
  script's groups until `failure_timeout` passes (0 = until `hbvip cleanup GROUP`). The restart count
  is kept until then, as Pacemaker keeps its fail-count.
* A tracked interface whose link is down makes the node ineligible for the groups with a VIP on it.
* A reload (`reconfigure`) keeps the state (streak, last result, restarts, ban) of each probe whose line
  is unchanged; a new or changed probe starts fresh, as at start-up (a check healthy until `fall`
  failures); a removed one is forgotten, so its verdict no longer counts.

Heartbeat moves resources per category (`Hold`), so a category is eligible only when all its groups are.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection, Iterable, Mapping, Sequence

from ..config.health import Check, Monitor, TrackInterface
from ..config.haresources import ResourceGroup
from ..records import dataclass, field
from .events import Hold


class ProbeKind(enum.StrEnum):
    CHECK = "check"
    MONITOR = "monitor"
    LINK = "link"


@dataclass
class Probe:
    """One check, monitor or tracked link, and what its results so far say."""

    kind: ProbeKind
    name: str
    groups: tuple[str, ...]       # keys of the groups it speaks for
    interval: float = 0.0
    timeout: float = 0.0
    fall: int = 1
    rise: int = 1
    restarts: int = 0
    failure_timeout: float = 0.0
    healthy: bool = True          # the verdict after fall/rise
    last: bool | None = None      # the last result (None: not run yet)
    streak: int = 0               # results in a row equal to `last`
    detail: str = ""
    next_run: float = 0.0
    running: bool = False         # a run is in flight at the edge; its result is still to come
    restarts_done: int = 0
    banned_until: float | None = None   # monitors: this node may not hold its groups until then

    @property
    def reason(self) -> str:
        """Why this probe makes the node ineligible, in the words of the log and `hbvip status`."""
        return {ProbeKind.CHECK: "check failed", ProbeKind.MONITOR: "monitor failed",
                ProbeKind.LINK: "link down"}[self.kind] + f": {self.name}"

    @property
    def blocks(self) -> bool:
        return not self.healthy or self.banned_until is not None


@dataclass(frozen=True)
class Restart:
    """Restart a monitored resource script here (stop, then start) in its group `group`."""

    script: str
    group: str
    attempt: int


@dataclass(frozen=True)
class Banned:
    """A monitored resource failed after its restarts: this node gives its groups up."""

    script: str
    until: float


HealthAction = Restart | Banned


@dataclass
class Health:
    """The health probes of one node. Build with `Health.from_config`."""

    me: str
    groups: tuple[ResourceGroup, ...]
    probes: dict[tuple[ProbeKind, str], Probe] = field(default_factory=dict)

    @classmethod
    def from_config(cls, *, me: str, groups: Sequence[ResourceGroup], checks: Iterable[Check],
                    monitors: Iterable[Monitor], tracks: Iterable[TrackInterface],
                    vip_interfaces: Mapping[str, frozenset[str]], now: float) -> Health:
        """`vip_interfaces`: group key -> the interfaces its VIPs are on (the edge chooses them)."""
        keys = tuple(g.key for g in groups)
        health = cls(me, tuple(groups))
        for c in checks:
            health.add(Probe(ProbeKind.CHECK, c.name, (c.group,) if c.group else keys, c.interval, c.timeout,
                             c.fall, c.rise, next_run=now))
        for m in monitors:
            mine = tuple(g.key for g in groups if any(r.name == m.script for r in g.resources))
            health.add(Probe(ProbeKind.MONITOR, m.script, mine, m.interval, m.timeout, m.fall, 1, m.restarts,
                             m.failure_timeout, next_run=now + m.interval))
        for t in tracks:
            on_it = tuple(k for k in keys if t.interface in vip_interfaces.get(k, frozenset()))
            health.add(Probe(ProbeKind.LINK, t.interface, on_it))
        return health

    def add(self, probe: Probe) -> None:
        self.probes[(probe.kind, probe.name)] = probe

    def reconfigure(self, fresh: Health, renew: Collection[tuple[ProbeKind, str]]) -> None:
        """A reload: `fresh` is `from_config` of the new files, `renew` the probes whose line is new or
        changed. The other probes of `fresh` that run already keep their state (and take the groups they
        speak for now); a probe not in `fresh` is gone. A result still in flight for a probe replaced or
        gone is dropped (`current`)."""
        probes = {}
        for key, probe in fresh.probes.items():
            kept = self.probes.get(key)
            if kept is not None and key not in renew:
                kept.groups = probe.groups
                probe = kept
            probes[key] = probe
        self.me, self.groups, self.probes = fresh.me, fresh.groups, probes

    def current(self, probe: Probe) -> bool:
        """The probe is still one of this node's (a reload did not replace or remove it)."""
        return self.probes.get((probe.kind, probe.name)) is probe

    # ---- what to run -------------------------------------------------------------------------------
    def due(self, now: float, held: Iterable[str]) -> list[Probe]:
        """The checks and monitors to start now; monitors only for groups this node holds and serves."""
        held = set(held)
        out = []
        for p in self.probes.values():
            if p.kind is ProbeKind.LINK or p.running or now < p.next_run:
                continue
            if p.kind is ProbeKind.MONITOR and (p.banned_until is not None or not held & set(p.groups)):
                continue
            p.running = True
            out.append(p)
        return out

    def next_deadline(self, held: Iterable[str]) -> float:
        held = set(held)
        t = math.inf
        for p in self.probes.values():
            if p.banned_until is not None:
                t = min(t, p.banned_until)
            if p.kind is ProbeKind.CHECK or (p.kind is ProbeKind.MONITOR and held & set(p.groups)):
                t = min(t, p.next_run if not p.running else math.inf)
        return t

    # ---- results -----------------------------------------------------------------------------------
    def result(self, kind: ProbeKind, name: str, ok: bool, now: float, detail: str = "") -> list[HealthAction]:
        """A check or monitor run ended (`ok` False also for a timeout: a hanging check is a failure)."""
        p = self.probes[(kind, name)]
        p.running = False
        p.next_run = now + p.interval
        self._count(p, ok, detail)
        if kind is ProbeKind.CHECK:
            if p.healthy and not ok and p.streak >= p.fall:
                p.healthy = False
            elif not p.healthy and ok and p.streak >= p.rise:
                p.healthy = True
            return []
        if ok or p.streak < p.fall:
            return []
        p.streak = 0
        if p.restarts_done < p.restarts:
            p.restarts_done += 1
            return [Restart(p.name, p.groups[0], p.restarts_done)]
        p.banned_until = now + p.failure_timeout if p.failure_timeout > 0 else math.inf
        return [Banned(p.name, p.banned_until)]

    def restarted(self, script: str, now: float) -> None:
        """A restart ended: the next status call comes an interval later, with a fresh streak."""
        p = self.probes.get((ProbeKind.MONITOR, script))
        if p is None:
            return          # a reload removed the monitor while its resource restarted
        p.next_run = now + p.interval
        p.last, p.streak = None, 0

    def link(self, interface: str, up: bool, now: float) -> None:  # pylint: disable=unused-argument
        p = self.probes.get((ProbeKind.LINK, interface))
        if p is not None and p.last is not up:
            self._count(p, up, "" if up else "NO-CARRIER")
            p.healthy = up

    def cleanup(self, group: str) -> bool:
        """`hbvip cleanup GROUP`: forget the monitor failures of the group's scripts. True if any."""
        found = False
        for p in self.probes.values():
            if p.kind is ProbeKind.MONITOR and group in p.groups and (p.banned_until is not None or p.restarts_done):
                p.banned_until, p.restarts_done, p.streak, p.last = None, 0, 0, None
                found = True
        return found

    def tick(self, now: float) -> list[str]:
        """Bans whose failure_timeout passed are lifted; returns the scripts cleared."""
        out = []
        for p in self.probes.values():
            if p.banned_until is not None and now >= p.banned_until:
                p.banned_until, p.restarts_done, p.streak, p.last = None, 0, 0, None
                out.append(p.name)
        return out

    @staticmethod
    def _count(p: Probe, ok: bool, detail: str) -> None:
        p.streak = p.streak + 1 if p.last is ok else 1
        p.last = ok
        p.detail = detail

    # ---- verdicts ----------------------------------------------------------------------------------
    def blocking(self, group: str) -> list[Probe]:
        """The probes that keep this node from holding `group` now."""
        return [p for p in self.probes.values() if p.blocks and group in p.groups]

    def eligible(self) -> tuple[Hold, str]:
        """The categories this node may hold, and the first reason for those it may not ("" if none)."""
        hold = Hold.ALL
        reason = ""
        for g in self.groups:
            blocking = self.blocking(g.key)
            if blocking:
                hold &= ~(Hold.LOCAL if g.home_node.lower() == self.me.lower() else Hold.FOREIGN)
                reason = reason or blocking[0].reason
        return hold, reason
