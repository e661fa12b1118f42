"""Carrying out a configuration reload (SIGHUP, `hbvip reload`) on a running node.

What changes is decided by the pure `plan_reload`; this applies it: the peer's new name, the held
groups to stop and start, the timers, the keys, the heartbeat paths (new sockets before the old ones
close, and each path's liveness), the resource settings and the health probes of hbvip.cf (one log line
per probe added, changed or removed). A broken config, a move in progress, a
media change the plan refuses or new sockets that cannot open (an interface that is not there, a group
that cannot be joined, a port in use) refuse the reload as a whole: the running configuration stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .clock import Clock
from .cluster import Failover, Membership
from .cluster.paths import PathWatch, media_interfaces
from .cluster.reload import plan_reload
from .config import Config, ConfigError, load_config
from .cluster.reload import ReloadPlan
from .link import Link, transport_for
from .log import EventLog
from .net.transport import Transport, TransportError
from .resources.groups import GroupWork
from .turns import TaskSet
from .wire import Signer


class _Paths(Protocol):
    @property
    def config_dir(self) -> Path: ...
    @property
    def init_dir(self) -> Path: ...


class Reloadable(Protocol):
    """The running node as a reload sees it."""

    config: Config
    peer: str
    paths: _Paths
    log: EventLog
    clock: Clock
    link: Link
    groups: GroupWork
    tasks: TaskSet
    membership: Membership
    path_watch: PathWatch
    failover: Failover

    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> None: ...

    async def reload_health(self, plan: ReloadPlan) -> None: ...


async def reload_config(node: Reloadable) -> tuple[bool, str]:
    """Load the files again and apply them; returns (ok, message) for `hbvip reload`. The new sockets
    open first: only when they do does anything change."""
    try:
        new = load_config(node.paths.config_dir, node.config.node_name, init_dir=node.paths.init_dir)
    except ConfigError as exc:
        node.log("error", "reload.refused", "Configuration reload refused; keeping the running configuration",
                 {"problems": len(exc.problems)})
        for p in exc.problems:
            node.log("error", "config.problem", str(p))
        return False, str(exc)
    plan = _plan(node, new)
    if isinstance(plan, str):
        return _refuse(node, plan)
    transport = transport_for(new, node.on_datagram)
    try:
        await transport.start()
    except (OSError, TransportError) as exc:
        return _refuse(node, f"the new heartbeat paths cannot open: {exc}")
    plan = _plan(node, new)          # again: a move may have begun while the sockets opened
    if isinstance(plan, str):
        transport.close()
        return _refuse(node, plan)
    _apply(node, new, plan, transport)
    await node.reload_health(plan)
    return True, "reloaded"


def _plan(node: Reloadable, new: Config) -> ReloadPlan | str:
    if node.failover.busy is not None:
        return "a resource transition is in progress; reload again when it is done"
    plan = plan_reload(node.config, new, node.failover.held, node.path_watch.live())
    return plan.refused or plan


def _refuse(node: Reloadable, why: str) -> tuple[bool, str]:
    node.log("error", "reload.refused", "Configuration reload refused; keeping the running configuration",
             {"reason": why})
    return False, f"{why}; the running configuration is kept"


def _apply(node: Reloadable, new: Config, plan: ReloadPlan, transport: Transport) -> None:
    if plan.renamed is not None:
        # A rolling rename: the peer comes back under its new name (and a new hb_uuid). Its groups
        # keep their identity, so nothing this node holds is touched.
        _rename_peer(node, *plan.renamed)
    node.config = new
    if plan.release or plan.acquire:
        node.tasks.spawn(node.groups.regroup(plan.release, plan.acquire))
    t = new.hacf.timers
    node.membership.retime(deadtime=t.deadtime, warntime=t.warntime, initdead=t.initdead)
    node.link.signer = Signer.from_authkeys(new.authkeys)
    _retransport(node, transport)
    node.path_watch.reconfigure(media_interfaces(new.hacf.media), t.deadtime)
    for name in plan.paths_added:
        node.log("info", "path.added", None, {"node": node.peer, "interface": name})
    for name in plan.paths_removed:
        node.log("info", "path.removed", None, {"node": node.peer, "interface": name})
    node.groups.retune(new)
    _log_probes(node, plan)
    for what in plan.at_restart:
        node.log("warning", "reload.partial", what, {})
    node.log.reopen()
    node.log("info", "reload.done", "Configuration reloaded.",
             {"digest": new.digest, "released": len(plan.release), "acquired": len(plan.acquire),
              "paths": ",".join(media_interfaces(new.hacf.media))})


def _log_probes(node: Reloadable, plan: ReloadPlan) -> None:
    """One line per health probe a reload adds, changes or removes: `check web added`."""
    for word, keys in (("added", plan.probes.added), ("changed", plan.probes.changed),
                       ("removed", plan.probes.removed)):
        for kind, name in keys:
            what = "track_interface" if kind == "link" else str(kind)
            tail = " (its state starts fresh)" if word == "changed" else ""
            node.log("info", f"health.probe_{word}", f"{what} {name} {word}{tail}", {"kind": what, "name": name})


def _rename_peer(node: Reloadable, old: str, new: str) -> None:
    alive = node.membership.peer.status not in ("unknown", "dead")
    tail = "; it is still running under the old name and will be declared dead" if alive else ""
    node.log("warning" if alive else "info", "peer.renamed", f"Peer node {old} is now {new}{tail}",
             {"old": old, "new": new, "peer_was_alive": alive})
    node.peer = new
    node.membership.rename_peer(new, node.clock.monotonic())
    node.path_watch.rename(new)
    node.failover.peer = new


def _retransport(node: Reloadable, new: Transport) -> None:
    """Follow a reload's heartbeat paths (a media line added or removed, a new peer address in ha.cf or
    /etc/hosts, another port): the new sockets opened before the old ones close, both deliver to the
    same handler, so no heartbeat falls in between. Unchanged paths keep the running transport."""
    old = node.link.transport
    if node.link.same_paths(new):
        new.close()
        return
    node.link.transport = new
    if old is not None:
        old.close()
    node.log("info", "transport.up", None, {"port": new.port, "peers": ",".join(new.peer_addresses),
                                            "reason": "reload"})
