"""Deferring a peer's death until a ping node has spoken (ha.cf `ping`).

A cable pulled on this node cuts the peer and the ping nodes in the same instant; the peer's death
(deadtime) may then come before the ping verdict (deadping), and the node would take over first and
release after. An answer later than the first missing heartbeat proves this node is not the one cut off;
without one, the death waits for the next probe round or for the verdict. Pure: the daemon asks
`defer` when membership reports a death and `due` after each probe round.
"""

from __future__ import annotations

from .events import Log, PeerDead
from .pingnodes import PingNodes


class DeathDeferral:
    """At most one held-back `PeerDead` and the moment after which a ping answer proves us connected."""

    def __init__(self, ping_nodes: PingNodes | None) -> None:
        self.ping_nodes = ping_nodes
        self.pending: tuple[PeerDead, float] | None = None

    def defer(self, event: PeerDead, *, peer: str, last_heard: float | None, keepalive: float) -> Log | None:
        """Hold `event` back unless a ping node answered after the peer's first missing heartbeat.

        Returns the log line of a deferral, or None when the death goes to the failover machine now
        (no ping nodes, a peer never heard, a graceful stop, or a ping answer already proves us)."""
        if self.ping_nodes is None or last_heard is None or event.graceful:
            return None
        proof_after = last_heard + keepalive
        if self.ping_nodes.answered_since(proof_after):
            return None
        self.pending = (event, proof_after)
        return Log("info", "peer.dead_deferred", "Peer is dead: confirming a ping node answers before taking over",
                   {"node": peer})

    def due(self, peer_status: str) -> PeerDead | None:
        """After a probe round: the held-back death once a ping node proved us connected, or once the
        verdict says we are not (the machine then refuses the takeover and says why)."""
        if self.pending is None or self.ping_nodes is None:
            return None
        event, proof_after = self.pending
        if peer_status != "dead":
            self.pending = None           # heard again meanwhile: nothing died
            return None
        if self.ping_nodes.answered_since(proof_after) or self.ping_nodes.reachable is False:
            self.pending = None
            return event
        return None
