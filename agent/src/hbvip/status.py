"""`hbvip status`: the node's live view, built from the machines' state as a `StatusView`."""

from __future__ import annotations

from . import __version__
from .cluster import Failover, Hold, Membership
from .cluster.groups import GroupState, category, group_state
from .cluster.health import Health
from .cluster.paths import PathWatch
from .cluster.pingnodes import PingNodes
from .config import Config
from .config.values import ipv4, ipv6
from .diagnosis import digest_state
from .link import Link
from .resources.groups import GroupWork
from .views import GroupStatusView, PathStatusView, PingStatusView, ProbeStatusView, StatusView


def status_view(*, config: Config, now: float, started: float, peer: str, membership: Membership,
                failover: Failover, link: Link, groups: GroupWork, ping_nodes: PingNodes | None,
                peer_digest: str | None, diagnosis: str | None, paths: PathWatch,
                health: Health | None = None) -> StatusView:
    fo = failover
    pv = membership.peer
    t = config.hacf.timers
    return {
        "node": config.node_name,
        "version": __version__,
        "status": fo.status_word,
        "phase": fo.phase.value,
        "stable": fo.stable,
        "hold": fo.held.word,
        "generation": link.generation,
        "uptime_s": round(now - started, 3),
        "config_digest": config.digest,
        "auto_failback": config.hacf.auto_failback,
        "timers": {"keepalive": t.keepalive, "warntime": t.warntime, "deadtime": t.deadtime, "initdead": t.initdead},
        "peer": {"name": peer, "state": pv.status, "hold": fo.peer_held.flipped().word,
                 "stable": fo.peer_stable,
                 "last_heard_s": round(now - pv.last_heard, 3) if pv.last_heard is not None else None,
                 "deadtime_s": membership.dead_after(), "generation": pv.hg,
                 "late_heartbeats": pv.late_heartbeats,
                 "addresses": link.peer_addresses,
                 "config_digest": peer_digest,
                 "config": digest_state(config.digest, peer_digest),
                 "diagnosis": diagnosis},
        "groups": _groups(config, fo, peer, groups, now),
        "holding_nothing": fo.holding_nothing_because if fo.held == Hold.NONE else None,
        "ping": None if ping_nodes is None else _ping(ping_nodes, now),
        "paths": _paths(paths, now, _media(config, link.peer_addresses)),
        "health": None if health is None else _health(health, now),
        "last_takeover": groups.last_takeover or None,
        "counters": {"packets_sent": link.sent, "packets_received": link.received,
                     "retransmitted": link.retransmitted,
                     "dropped": {k: v for k, v in sorted(membership.dropped.items()) if k != "own"},
                     **groups.runner.counters,
                     **({f"transport_{k}": v for k, v in link.transport.counters.items()}
                        if link.transport else {})},
    }


def _groups(config: Config, fo: Failover, peer: str, work: GroupWork, now: float) -> list[GroupStatusView]:
    out: list[GroupStatusView] = []
    for g in config.groups:
        cat = category(g, config.node_name)
        state = group_state(fo, cat)
        holder = {GroupState.HELD: config.node_name, GroupState.HELD_BY_PEER: peer}.get(state)
        since = fo.since.get(cat)
        out.append({"key": g.key, "home_node": g.home_node, "holder": holder, "state": state.value,
                    "resources": [r.spec for r in g.resources],
                    "vips": [v.address for v in g.vips],
                    "since_s": round(now - since, 3) if since is not None and holder == config.node_name else None,
                    "eligible": bool(fo.eligible & cat), "peer_eligible": bool(fo.peer_eligible & cat),
                    "degraded": bool(fo.degraded & cat),
                    **work.history.fields(g.key)})
    return out


def _paths(watch: PathWatch, now: float, media: dict[str, list[str]]) -> list[PathStatusView]:
    return [{"peer": watch.peer, "interface": p.interface, "up": p.up, "datagrams": p.datagrams,
             "last_heard_s": round(now - p.last_heard, 3) if p.last_heard is not None else None,
             "media": media.get(p.interface, [])}
            for p in watch.paths.values()]


def _media(config: Config, peer_addresses: list[str]) -> dict[str, list[str]]:
    """Each path's media lines to the peer, named by `Medium.label`. A shared ha.cf names both nodes on
    `ucast` lines and the transport drops its own: an address is shown when it is a peer address, a
    host name unless it is this node's own name (its address is known only to the transport)."""
    out: dict[str, list[str]] = {}
    for m in config.hacf.media:
        if m.kind in ("ucast", "ucast6") and m.address is not None:
            literal = ipv4(m.address) or ipv6(m.address)
            own = (str(literal) not in peer_addresses) if literal else m.address.lower() == config.node_name.lower()
            if own:
                continue
        label = m.label(config.hacf.udpport)
        if label not in out.setdefault(m.interface, []):
            out[m.interface].append(label)
    return out


def _ping(nodes: PingNodes, now: float) -> PingStatusView:
    return {"reachable": bool(nodes.reachable), "deadping_s": nodes.deadping,
            "nodes": [{"address": v.address, "up": v.up, "last_answer_s": v.last_answer_s}
                      for v in nodes.view(now)]}


def _health(health: Health, now: float) -> list[ProbeStatusView]:
    return [{"kind": p.kind.value, "name": p.name, "groups": list(p.groups), "healthy": not p.blocks,
             "last": p.last, "streak": p.streak, "detail": p.detail, "restarts": p.restarts_done,
             "banned_for_s": None if p.banned_until is None else -1.0 if p.banned_until == float("inf")
             else round(max(0.0, p.banned_until - now), 3)}
            for p in health.probes.values()]
