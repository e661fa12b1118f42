"""The health part of the `hbvip status` table: each check, monitor and tracked link with its last
result and streak, and each group's eligibility on both nodes (read from the `StatusView` document)."""

from __future__ import annotations

from typing import Any


def health_lines(st: dict[str, Any]) -> list[str]:
    """hbvip.cf's checks, monitors and tracked links, and each group's eligibility (none without them)."""
    probes = st.get("health")
    if probes is None:
        return []
    out = ["", f"{'HEALTH':<8} {'NAME':<20} {'RESULT':<8} {'STREAK':<7} DETAIL"]
    for p in probes:
        result = "-" if p["last"] is None else "ok" if p["last"] else "failed"
        banned = p["banned_for_s"]
        note = "" if banned is None else "  banned until `hbvip cleanup`" if banned < 0 else f"  banned {banned:.0f}s more"
        out.append(f"{p['kind']:<8} {p['name']:<20} {result:<8} {p['streak']:<7} {p['detail']}{note}".rstrip())
    peer = st["peer"]["name"]
    for g in st["groups"]:
        degraded = "   DEGRADED: no node eligible, it stays" if g["degraded"] else ""
        out.append(f"eligible {g['key']}: {st['node']} {'yes' if g['eligible'] else 'no'}, "
                   f"{peer} {'yes' if g['peer_eligible'] else 'no'}{degraded}")
    return out
