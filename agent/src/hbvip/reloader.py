"""Carrying out a configuration reload (SIGHUP, `hbvip reload`) on a running node.

What changes is decided by the pure `plan_reload`; this applies it: the peer's new name, the held
groups to stop and start, the timers, the keys, the heartbeat paths (new sockets before the old ones
close) and the resource settings. A broken config or a move in progress refuses the reload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .clock import Clock
from .cluster import Failover, Membership
from .cluster.paths import PathWatch
from .cluster.reload import plan_reload
from .config import Config, ConfigError, load_config
from .link import Link, transport_for
from .log import EventLog
from .net.transport import TransportError
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


def reload_config(node: Reloadable) -> tuple[bool, str]:
    """Load the files again and apply them; returns (ok, message) for `hbvip reload`."""
    try:
        new = load_config(node.paths.config_dir, node.config.node_name, init_dir=node.paths.init_dir)
    except ConfigError as exc:
        node.log("error", "reload.refused", "Configuration reload refused; keeping the running configuration",
                 {"problems": len(exc.problems)})
        for p in exc.problems:
            node.log("error", "config.problem", str(p))
        return False, str(exc)
    old = node.config
    if node.failover.busy is not None:
        return False, "a resource transition is in progress; reload again when it is done"
    plan = plan_reload(old, new, node.failover.held)
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
    node.tasks.spawn(_retransport(node, new))
    node.groups.retune(new)
    for what in plan.at_restart:
        node.log("warning", "reload.partial", what, {})
    node.log.reopen()
    node.log("info", "reload.done", "Configuration reloaded.",
             {"digest": new.digest, "released": len(plan.release), "acquired": len(plan.acquire)})
    return True, "reloaded"


def _rename_peer(node: Reloadable, old: str, new: str) -> None:
    alive = node.membership.peer.status not in ("unknown", "dead")
    tail = "; it is still running under the old name and will be declared dead" if alive else ""
    node.log("warning" if alive else "info", "peer.renamed", f"Peer node {old} is now {new}{tail}",
             {"old": old, "new": new, "peer_was_alive": alive})
    node.peer = new
    node.membership.rename_peer(new, node.clock.monotonic())
    node.path_watch.rename(new)
    node.failover.peer = new


async def _retransport(node: Reloadable, cfg: Config) -> None:
    """Follow a reload's heartbeat paths (a new peer address in ha.cf or /etc/hosts, another port):
    the new sockets open before the old ones close, both deliver to the same handler, so no
    heartbeat falls in between. Unchanged paths keep the running transport."""
    new = transport_for(cfg, node.on_datagram)
    try:
        await new.start()
    except (OSError, TransportError) as exc:
        node.log("error", "reload.transport", "Keeping the previous heartbeat paths", {"error": str(exc)})
        return
    old = node.link.transport
    if node.link.same_paths(new):
        new.close()
        return
    node.link.transport = new
    if old is not None:
        old.close()
    node.log("info", "transport.up", None, {"port": new.port, "peers": ",".join(new.peer_addresses),
                                            "reason": "reload"})
