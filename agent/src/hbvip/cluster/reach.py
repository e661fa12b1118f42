"""Partitions, inside the failover machine: Heartbeat's `ping` nodes as the tiebreaker of a two-node
pair, and the heal when both sides claimed the same groups.

A node that reaches none of them (`Connectivity(False)`) is the one cut off, so it neither takes nor
keeps anything; it releases what it holds (reason `ping lost`) and reports holding nothing, and a peer
that still reaches them takes the groups as unclaimed. When it reaches one again it acts as after any
other return: it takes what nobody holds and, with auto_failback, asks for its own groups back
(`hb_takeover`, Heartbeat's own request). After a heal the home node keeps its groups and
re-announces them, the other releases without a handshake. `Failover` mixes this in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .events import Action, Announce, Connectivity, Hold, Log, Op, Reply, Send
from .phases import Phase, Role

if TYPE_CHECKING:
    from .moves import Handshake

#: Extra field of our `resource` reports (ping configured): "0" = this node reaches no ping node, so the
#: peer does not offer it groups (auto_failback) that it would have to refuse. Heartbeat ignores it.
PING_FIELD = "hbvip_ping"


class PingReach:
    """Reachability of the ping nodes, the heal after a partition (state declared in `Failover`)."""

    if TYPE_CHECKING:
        peer: str
        phase: Phase
        held: Hold
        target: Hold
        peer_held: Hold
        peer_alive: bool
        peer_stable: bool
        failed: Hold
        busy: tuple[Op, Hold] | None
        handshake: Handshake | None
        auto_failback: bool
        needs_failback: bool
        settle_timeout: float
        settle_deadline: float | None
        takeover_request: tuple[int, Hold, float] | None
        reachable: bool
        eligible: Hold
        unreachable: tuple[str, ...]
        reclaim: bool
        both_starting: bool
        unclaimed_at: float | None
        orphans_at: float | None
        heal_grace: float
        _now: float

        def _enter(self, phase: Phase) -> None: ...

        def _report(self, *, info: str | None = None, stable: bool | None = None) -> Send: ...

        def _abort_handshake(self, why: str) -> list[Action]: ...

    @property
    def reach(self) -> Hold:
        """What this node may hold at all: everything, or nothing while it reaches no ping node."""
        return (Hold.ALL if self.reachable else Hold.NONE) & self.eligible

    @property
    def holding_nothing_because(self) -> str | None:
        """Why this node holds nothing when the reason is its own connectivity (for status and logs)."""
        if self.reachable:
            return None
        return f"no ping node reachable ({', '.join(self.unreachable)})" if self.unreachable \
            else "no ping node reachable"

    def _reclaim_own(self) -> list[Action]:
        """Back in touch with a ping node: with auto_failback, ask the settled peer for our own groups,
        as a restarted home node would. `hb_takeover` is Heartbeat's request, so a Heartbeat peer obeys it."""
        if not (self.reclaim and self.reachable and self.phase is Phase.RUNNING and self.peer_alive
                and self.peer_stable and self.handshake is None and self.busy is None):
            return []
        self.reclaim = False
        want = Hold.LOCAL & self.peer_held & ~self.held & ~self.failed
        if not self.auto_failback or not want:
            return []
        return [Log("info", "failback.request", f"auto_failback: asking {self.peer} for our {want.word} resources",
                    {"to": self.peer, "hold": want.word}),
                Send("hb_takeover", (("rsc_hold", want.word),))]

    # ---- after a partition -----------------------------------------------------------------------
    def _take_unclaimed(self) -> list[Action]:
        """Principle 1 while running: a group nobody holds and the stable peer gave up on (its start
        failed, so it reports holding nothing) is taken here, once. Groups whose start failed *here*
        are not retried, so two failing nodes never ping-pong a group."""
        unclaimed = self.reach & ~self.target & ~self.held & ~self.peer_held & ~self.failed
        if not unclaimed or not self.peer_alive:
            return []
        self.target |= unclaimed
        return [Log("warning", "takeover.unclaimed", f"{unclaimed.word} resources held by nobody: acquiring them",
                    {"hold": unclaimed.word, "peer": self.peer})]

    def _reconcile(self) -> list[Action]:
        """Both claim a category (a healed partition): the home node keeps it, the other lets go."""
        both = self.held & self.peer_held
        out: list[Action] = []
        if both & Hold.LOCAL:
            out.append(Log("error", "splitbrain.local", "Both machines own our resources!"))
            out.append(Announce(Hold.LOCAL))
            # Tell the peer too: after a one-way partition it never saw us die, so nothing else would
            # make it learn that we hold its foreign groups, and it would keep its copy for good.
            out.append(self._report())
        if both & Hold.FOREIGN:
            out.append(Log("error", "splitbrain.foreign", "Both machines own foreign resources!"))
            self.target &= ~Hold.FOREIGN
            self.needs_failback = False
        return out

    # ---- ping nodes -------------------------------------------------------------------------------
    def _on_connectivity(self, event: Connectivity) -> list[Action]:
        was = self.reachable
        self.reachable = event.reachable
        self.unreachable = () if event.reachable else event.unreachable
        if event.reachable == was:
            return []
        if not event.reachable:
            return self._lose_reach()
        out: list[Action] = [Log("info", "ping.reachable", "A ping node is reachable: resuming normal operation.")]
        if self.phase is Phase.STARTING:
            # Start-up waited for this: decide now as it would have (principle 1, or both starting).
            if self.peer_stable:
                self._enter(Phase.RUNNING)
                self.settle_deadline = None
                self.target = self.reach & ~self.peer_held & ~self.failed
            elif self.both_starting:
                self._enter(Phase.RUNNING)
                self.settle_deadline = None
                self.target = Hold.LOCAL & ~self.failed & self.reach
                out.append(Log("info", "start.both", "Both nodes starting: acquiring local resources."))
            return out
        if self.phase is not Phase.RUNNING:
            return out
        if not self.peer_alive:
            # The peer's heartbeats often come back in the same instant as the ping node (one cable, one
            # switch): wait a heal grace for them before taking over, or both nodes would hold the groups.
            self.orphans_at = self._now + self.heal_grace
            out.append(Log("info", "takeover.pending", None,
                           {"from": self.peer, "reason": "ping reachable", "wait_ms": round(self.heal_grace * 1000)}))
            return out
        # Our own groups at once if nobody holds them (they cannot collide: the peer takes them only as
        # unclaimed); the peer's groups a settle time later, so a peer that regains its ping node at the
        # same moment (a router reboot) takes its own first instead of both taking them.
        self.target |= Hold.LOCAL & ~self.peer_held & ~self.failed & self.reach
        self.reclaim = True
        self.unclaimed_at = self._now + self.settle_timeout
        out.append(self._report())       # the peer learns that it may hand groups back to us again
        return out

    def _take_orphans(self, now: float) -> list[Action]:
        """The heal grace after the ping node came back is over: take everything if the peer is still
        silent (nobody has served the groups since it died)."""
        if self.orphans_at is None or now < self.orphans_at:
            return []
        self.orphans_at = None
        if self.phase is not Phase.RUNNING or self.peer_alive or not self.reachable:
            return []
        self.target = self.reach & ~self.failed
        self.needs_failback = bool(self.target & Hold.FOREIGN)
        return [Log("info", "takeover.start", f"Resources being acquired from {self.peer}.",
                    {"from": self.peer, "reason": "ping reachable", "hold": Hold.ALL.word})]

    def _lose_reach(self) -> list[Action]:
        why = self.holding_nothing_because
        out: list[Action] = [Log("warning", "ping.lost", f"{why}: giving up all HA resources",
                                 {"unreachable": ",".join(self.unreachable), "hold": self.held.word})]
        self.reclaim = False
        self.unclaimed_at = None
        self.orphans_at = None
        self.needs_failback = False
        hs = self.handshake
        if hs is not None and hs.role is Role.TAKER:
            out += self._abort_handshake(why or "ping lost")
        if self.takeover_request is not None:
            out.append(Reply(self.takeover_request[0], False, f"takeover aborted: {why}"))
            self.takeover_request = None
        if self.phase is not Phase.SHUTDOWN:
            self.target = Hold.NONE
        if self.phase in (Phase.RUNNING, Phase.STARTING) and self.peer_alive:
            out.append(self._report())   # even holding nothing: the peer must not offer us groups now
        return out
