"""The table `hbvip status` prints: what an operator reads first, so its words are Heartbeat's
(`Link server2:eth1`, holders, dead time) and its times are wall-clock, to match the logs."""

from __future__ import annotations

import time
from typing import Any

from .healthtable import health_lines


def render_status(st: dict[str, Any], now: float | None = None) -> str:
    """The table an operator reads: this node, the peer and the link to it, each group's holder and
    since when (wall clock, so it matches the logs), and the packet counters."""
    now = time.time() if now is None else now
    peer = st["peer"]
    heard = "never" if peer["last_heard_s"] is None else f"{peer['last_heard_s']:.1f}s ago"
    lines = [
        f"node   {st['node']:<12} {st['status']:<8} holds {st['hold']:<8} {'stable' if st['stable'] else 'in transition'}"
        f"   generation {st['generation']}",
        f"peer   {peer['name']:<12} {peer['state']:<8} holds {peer['hold']:<8} heard {heard}"
        f"   dead after {peer['deadtime_s']:g}s   late heartbeats {peer['late_heartbeats']}",
        *_link_lines(st),
        *_path_lines(st),
        *_ping_lines(st),
        "",
        f"{'GROUP':<36} {'HOME':<10} {'HOLDER':<10} {'STATE':<14} {'SINCE':<19} LAST TAKEOVER",
    ]
    for g in st["groups"]:
        since = "" if g["since_s"] is None else f"{_clock(now - g['since_s'])} ({_age(g['since_s'])})"
        took = g.get("last_takeover_s")
        last = "" if took is None else f"{_clock(g['last_takeover_at'])} in {took * 1000:.0f} ms"
        lines.append(f"{g['key']:<36} {g['home_node']:<10} {g['holder'] or '-':<10} {g['state']:<14} {since:<19} {last}")
    lines += health_lines(st)
    c = st["counters"]
    dropped = ", ".join(f"{k}={v}" for k, v in c["dropped"].items()) or "none"
    lines += ["", f"packets sent {c['packets_sent']}  received {c['packets_received']}  dropped: {dropped}"]
    if peer.get("config") == "differs":
        lines.append(f"WARNING: {peer['name']} runs different config files (digest {peer['config_digest']}, "
                     f"ours {st['config_digest']}): compare ha.cf, haresources and hbvip.cf")
    if peer.get("diagnosis"):
        lines.append(f"WARNING: {peer['diagnosis']}")
    if st.get("holding_nothing"):
        lines.append(f"holding nothing: {st['holding_nothing']}")
    return "\n".join(line.rstrip() for line in lines)


def _link_lines(st: dict[str, Any]) -> list[str]:
    """Where heartbeats go: one line per media line to the peer, by its medium and address, group or
    interface (`link   mcast6 eth0 [ff12::1]:694`). A status without media (an older agent) has only
    the peer's ucast addresses."""
    media = [m for p in st.get("paths", []) for m in p.get("media", [])]
    if media:
        return [f"link   {m}" for m in dict.fromkeys(media)]
    return [f"link   ucast to {', '.join(st['peer'].get('addresses') or []) or '-'}"]


def _path_lines(st: dict[str, Any]) -> list[str]:
    """One line per heartbeat path (media interface): `Link server2:eth1` up/dead, as Heartbeat names it."""
    out = []
    for p in st.get("paths", []):
        heard = "never heard" if p["last_heard_s"] is None else f"heard {p['last_heard_s']:.1f}s ago"
        link = f"{p['peer']}:{p['interface']}"
        out.append(f"path   {link:<20} {'up' if p['up'] else 'dead':<8} {heard}   datagrams {p['datagrams']}")
    return out


def _ping_lines(st: dict[str, Any]) -> list[str]:
    """One line per ping node: up/down and when it last answered (ha.cf `ping`; none without it)."""
    pinged = st.get("ping")
    if not pinged:
        return []
    out = []
    for n in pinged["nodes"]:
        heard = "never answered" if n["last_answer_s"] is None else f"answered {n['last_answer_s']:.1f}s ago"
        out.append(f"ping   {n['address']:<12} {'up' if n['up'] else 'down':<8} {heard}   dead after {pinged['deadping_s']:g}s")
    return out


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h" if seconds < 172800 else f"{seconds / 86400:.0f}d"
