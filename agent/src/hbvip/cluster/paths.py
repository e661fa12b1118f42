"""Redundant heartbeat paths: each media line's interface is a path to the peer with its own liveness,
as Heartbeat keeps one per medium (`Link server2:eth1 dead.`, `cl_status hblinkstatus`).

A path is up from the first genuine datagram of the peer that arrives on it and dead after `deadtime`
without one. Every authenticated copy counts for its path, also a copy of a heartbeat that already
arrived on another path (the membership calls that one a duplicate and takes no sign of life from it):
the peer's life is the membership's business, which declares it dead only when no path brought
anything new for deadtime. So losing one of two paths is a warning and never a failover.
Pure: the clock comes in as `now`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..records import dataclass


@dataclass(frozen=True)
class PathChange:
    """A path came up or died; `others_up` tells whether the peer is still heard on another path."""

    peer: str
    interface: str
    up: bool
    others_up: bool


@dataclass
class PathState:
    """One heartbeat path (interface) to the peer: up or dead, when last heard."""
    interface: str
    up: bool = False
    last_heard: float | None = None
    datagrams: int = 0


class PathWatch:
    """The liveness of each path (interface) to one peer."""

    def __init__(self, peer: str, interfaces: Iterable[str], deadtime: float) -> None:
        self.peer = peer
        self.deadtime = deadtime
        self.paths = {name: PathState(name) for name in dict.fromkeys(interfaces)}

    def heard(self, interface: str | None, now: float) -> list[PathChange]:
        """A genuine datagram of the peer arrived on `interface`; an interface no media line names is
        not a path (a reply routed over another link), and changes nothing."""
        path = self.paths.get(interface or "")
        if path is None:
            return []
        path.last_heard, path.datagrams = now, path.datagrams + 1
        if path.up:
            return []
        path.up = True
        return [self._change(path)]

    def check(self, now: float, grace: float = 0.0) -> list[PathChange]:
        """Paths silent for deadtime die, each once; for `grace` instead while the peer restarts in place
        (cluster/grace.py): its silence then is planned, not a broken path."""
        changes = []
        for path in self.paths.values():
            if path.up and path.last_heard is not None and now - path.last_heard >= max(self.deadtime, grace):
                path.up = False
                changes.append(self._change(path))
        return changes

    def next_deadline(self, grace: float = 0.0) -> float:
        return min((p.last_heard + max(self.deadtime, grace) for p in self.paths.values()
                    if p.up and p.last_heard is not None), default=float("inf"))

    def reconfigure(self, interfaces: Iterable[str], deadtime: float) -> None:
        """A reload's paths: kept ones keep their state, new ones start down (up at their first datagram),
        removed ones are forgotten (never reported dead: the operator took them away)."""
        self.deadtime = deadtime
        self.paths = {name: self.paths.get(name) or PathState(name) for name in dict.fromkeys(interfaces)}

    def live(self) -> list[str]:
        """The paths the peer is heard on now."""
        return [p.interface for p in self.paths.values() if p.up]

    def rename(self, peer: str) -> None:
        """The peer was renamed by a reload; its paths stay what they are."""
        self.peer = peer

    def _change(self, path: PathState) -> PathChange:
        others = any(p.up for p in self.paths.values() if p is not path)
        return PathChange(self.peer, path.interface, path.up, others)


def media_interfaces(media: Iterable[object]) -> list[str]:
    """The paths of ha.cf's media lines: each interface once, in the order the lines name them."""
    return list(dict.fromkeys(str(getattr(m, "interface")) for m in media))
