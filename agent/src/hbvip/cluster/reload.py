"""What a configuration reload changes on a running node, decided from the old and new config alone.

Pure: the daemon loads the new files, asks `plan_reload` and carries the plan out (`hbvip.reloader`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config, ResourceGroup
from .events import Hold
from .groups import groups_of


@dataclass(frozen=True)
class ReloadPlan:
    """The peer's new name (a rolling rename), the held groups to stop and start, and the changes that
    wait for a restart (one warning each)."""

    renamed: tuple[str, str] | None
    release: tuple[ResourceGroup, ...]
    acquire: tuple[ResourceGroup, ...]
    at_restart: tuple[str, ...]


def signature(group: ResourceGroup, rename: dict[str, str] | None = None) -> tuple[str, tuple[str, ...]]:
    """A group's identity across reloads: its home node and resources; line numbers do not count, and a
    renamed peer's groups are the same groups under the new name."""
    home = group.home_node.lower()
    return (rename or {}).get(home, home), tuple(r.spec for r in group.resources)


def plan_reload(old: Config, new: Config, held: Hold) -> ReloadPlan:
    """Only groups this node holds are touched: changed ones it holds are released, and new ones in a
    category it holds are acquired; a renamed peer keeps its groups (nothing held here moves)."""
    renamed = new.peers[0].lower() != old.peers[0].lower()
    rename = {old.peers[0].lower(): new.peers[0].lower()} if renamed else {}
    old_sigs = {signature(g, rename) for g in old.groups}
    new_sigs = {signature(g) for g in new.groups}
    gone = [g for g in old.groups if signature(g, rename) not in new_sigs]
    added = [g for g in new.groups if signature(g) not in old_sigs]
    mine = {g.key for g in groups_of(old.groups, old.node_name, held)}
    mine_new = {g.key for g in groups_of(new.groups, new.node_name, held)}
    at_restart = []
    if (new.hacf.ping, new.hacf.timers.deadping) != (old.hacf.ping, old.hacf.timers.deadping):
        at_restart.append("ping/deadping changes take effect at the next restart")
    if (new.ext.metrics_listen, new.ext.metrics_textfile) != (old.ext.metrics_listen, old.ext.metrics_textfile):
        at_restart.append("metrics_listen/metrics_textfile change at the next restart")
    return ReloadPlan(renamed=(old.peers[0], new.peers[0]) if renamed else None,
                      release=tuple(g for g in gone if g.key in mine),
                      acquire=tuple(g for g in added if g.key in mine_new),
                      at_restart=tuple(at_restart))
