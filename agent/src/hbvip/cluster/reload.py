"""What a configuration reload changes on a running node, decided from the old and new config and the
paths the peer is heard on now.

Pure: the daemon loads the new files, asks `plan_reload` and carries the plan out (`hbvip.reloader`).
"""

from __future__ import annotations

from collections.abc import Collection

from ..config import Config, ResourceGroup
from ..config.extensions import Extensions
from ..records import dataclass, replace
from .events import Hold
from .groups import groups_of
from .health import ProbeKind
from .paths import media_interfaces


ProbeKey = tuple[ProbeKind, str]


@dataclass(frozen=True)
class ProbeChanges:
    """hbvip.cf's health lines (`check`, `monitor`, `track_interface`) that a reload adds, changes (any
    setting or the command; the line number does not count) and removes, in file order."""

    added: tuple[ProbeKey, ...] = ()
    changed: tuple[ProbeKey, ...] = ()
    removed: tuple[ProbeKey, ...] = ()

    @property
    def renew(self) -> frozenset[ProbeKey]:
        """The probes that start fresh, as at start-up."""
        return frozenset(self.added + self.changed)


def health_lines(ext: Extensions) -> dict[ProbeKey, object]:
    """Each health line of hbvip.cf by the probe it makes, without its line number."""
    out: dict[ProbeKey, object] = {(ProbeKind.CHECK, c.name): replace(c, line=0) for c in ext.checks}
    out.update({(ProbeKind.MONITOR, m.script): replace(m, line=0) for m in ext.monitors})
    out.update({(ProbeKind.LINK, t.interface): replace(t, line=0) for t in ext.track_interfaces})
    return out


def probe_changes(old: Extensions, new: Extensions) -> ProbeChanges:
    before, after = health_lines(old), health_lines(new)
    return ProbeChanges(added=tuple(k for k in after if k not in before),
                        changed=tuple(k for k in after if k in before and before[k] != after[k]),
                        removed=tuple(k for k in before if k not in after))


@dataclass(frozen=True)
class ReloadPlan:
    """The peer's new name (a rolling rename), the held groups to stop and start, the heartbeat paths
    (interfaces) that come and go, the changes that wait for a restart (one warning each) and the health
    probes that come, change and go (`probes`; `health`: the node runs probes and reports its
    eligibility in its heartbeats, Failover's `health` flag); or why the reload is refused as a whole
    (`refused`), the running configuration then staying in force."""

    renamed: tuple[str, str] | None
    release: tuple[ResourceGroup, ...]
    acquire: tuple[ResourceGroup, ...]
    at_restart: tuple[str, ...]
    paths_added: tuple[str, ...] = ()
    paths_removed: tuple[str, ...] = ()
    probes: ProbeChanges = ProbeChanges()
    health: bool = False
    refused: str | None = None


def signature(group: ResourceGroup, rename: dict[str, str] | None = None) -> tuple[str, tuple[str, ...]]:
    """A group's identity across reloads: its home node and resources; line numbers do not count, and a
    renamed peer's groups are the same groups under the new name."""
    home = group.home_node.lower()
    return (rename or {}).get(home, home), tuple(r.spec for r in group.resources)


def plan_reload(old: Config, new: Config, held: Hold, live_paths: Collection[str] = ()) -> ReloadPlan:
    """Only groups this node holds are touched: changed ones it holds are released, and new ones in a
    category it holds are acquired; a renamed peer keeps its groups (nothing held here moves).

    Media lines may add and remove paths, but not every path the peer is heard on now (`live_paths`) at
    once: until the peer reloads too it would be heard on none of them, and a pair whose paths all
    change in one step has no path both ends agree on. That reload is refused; the safe order is to add
    the new path on both nodes, then remove the old one."""
    paths = _path_changes(old, new, live_paths)
    if isinstance(paths, str):
        return ReloadPlan(renamed=None, release=(), acquire=(), at_restart=(), refused=paths)
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
                      at_restart=tuple(at_restart), paths_added=paths[0], paths_removed=paths[1],
                      probes=probe_changes(old.ext, new.ext), health=new.ext.has_health)


def _path_changes(old: Config, new: Config, live: Collection[str]) -> tuple[tuple[str, ...], tuple[str, ...]] | str:
    """(added, removed) path interfaces, or why the change is refused."""
    before, after = media_interfaces(old.hacf.media), media_interfaces(new.hacf.media)
    up = [name for name in before if name in live]
    if up and not set(up) & set(after):
        kept = ", ".join(up)
        return (f"the new media lines keep none of the paths {old.peers[0]} is heard on now ({kept}); "
                f"add the new path on both nodes and reload, then remove the old one")
    return tuple(n for n in after if n not in before), tuple(n for n in before if n not in after)
