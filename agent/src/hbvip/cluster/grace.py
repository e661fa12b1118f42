"""The peer's side of a restart in place: how long to wait for a node that said it restarts.

An agent that restarts in place (`hbvip restart-in-place`, cluster/inplace.py) keeps its groups and
goes silent for the time its successor needs to start. Its last heartbeat says so (`RESTARTING_FIELD`),
and an hbvip peer then waits max(the dead time, RESTART_GRACE) of silence instead of the dead time
before it declares the node dead and takes over. The grace is bounded and given once per restart: the
next heartbeat without the field ends it, and a node that never comes back is dead when it runs out.

Every hbvip heartbeat says how long its sender would wait (`GRACE_FIELD`): a node restarts in place
only when its peer grants a grace, which Heartbeat 3.0.6 (it ignores both fields) and an older hbvip do
not. Pure: the membership machine calls `read_grace` for each heartbeat.
"""

from __future__ import annotations

from .events import Log

#: Extra fields of hbvip's `status` messages: the grace the sender grants (ms, hex) and "1" in the last
#: heartbeats of an agent about to restart in place.
GRACE_FIELD = "hbvip_grace"
RESTARTING_FIELD = "hbvip_restarting"
#: The least silence a peer restarting in place is given before it is declared dead.
RESTART_GRACE = 10.0


def granted_grace(deadtime: float) -> float:
    """How long this node waits for a peer that restarts in place (what its heartbeats say it grants)."""
    return max(deadtime, RESTART_GRACE)


def grace_fields(deadtime: float, *, restarting: bool = False) -> tuple[tuple[str, str], ...]:
    """The extra fields of our heartbeat: the grace we grant, and whether we are restarting in place."""
    fields = ((GRACE_FIELD, f"{round(granted_grace(deadtime) * 1000):x}"),)
    return fields + ((RESTARTING_FIELD, "1"),) if restarting else fields


def read_grace(peer: str, fields: dict[str, str], grace: float, dead_after: float, interval: float
               ) -> tuple[float, float, list[Log]]:
    """One heartbeat of the peer: (the grace it grants us, the silence it is given now, log lines).

    `grace` is the silence it was given so far (0: none), `dead_after` its dead time, `interval` the
    time since its previous heartbeat (how long the restart took, when it is back)."""
    try:
        grants = int(fields.get(GRACE_FIELD, "0"), 16) / 1000.0
    except ValueError:
        grants = 0.0
    if fields.get(RESTARTING_FIELD) != "1":
        back = [Log("info", "peer.resumed", f"Node {peer} restarted in place: heard again",
                    {"node": peer, "after_ms": round(interval * 1000)})] if grace else []
        return grants, 0.0, back
    if grace:
        return grants, grace, []          # the same restart announced again: no new grace
    grace = max(dead_after, RESTART_GRACE)
    ms = round(grace * 1000)
    return grants, grace, [Log("info", "peer.restarting", f"Node {peer} restarts in place: waiting up to {ms} ms "
                               "for it before declaring it dead", {"node": peer, "grace_ms": ms})]
