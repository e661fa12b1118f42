"""The failover state machine: which resource groups this node should hold, and the steps to get there.

Pure: `handle(event, now)` returns actions; nothing here touches a socket, a script or the clock. The
daemon carries the actions out and reports back with `ResourcesDone`.

It follows Heartbeat's "nice failback" model (what `auto_failback on|off` select), in Heartbeat's own
message vocabulary so a real Heartbeat peer can follow it:

* Resources move per category (`Hold`): a node's *local* groups (home node = itself) and *foreign* ones.
* A node takes a category only when the peer is dead, or the peer is *stable* and says it does not hold
  it. Claims are made before the work starts and dropped before a release starts (as Heartbeat does), so a
  `resource` report never offers the peer something still being worked on.
* Start-up: wait for the peer until `initdead`; then announce `starting`. If the peer answers with a stable
  report, take everything it does not hold. If both start together, each takes only its local groups at
  once (Heartbeat waits RQSTDELAY = 10 s here; two nodes that both hold nothing cannot collide on their
  own local groups, so the wait buys nothing).
* Moves between live nodes use the 3-phase standby protocol (`ask_resources` me / other / done): the
  giver releases completely before it says `done`, and only then does the taker acquire. Auto-failback is
  the holder of foreign groups starting that protocol when their home node becomes stable.
* Graceful stop releases everything, then says `shutdone`, so the peer takes over at once.
* After a partition heals both may hold a category; the rule is deterministic on both sides: the home node
  keeps its groups and re-announces them (gratuitous ARP), the other releases without a handshake.
* `ping` nodes (ha.cf) break the tie a two-node pair cannot break alone: a node that reaches none of them
  (`Connectivity(False)`) is the one cut off, so it neither takes nor keeps anything; it releases what it
  holds (reason `ping lost`) and reports holding nothing, and a peer that still reaches them takes the
  groups as unclaimed. When it reaches one again it acts as after any other return: it takes what nobody
  holds and, with auto_failback, asks for its own groups back (`hb_takeover`, Heartbeat's own request).

The standby protocol and operator commands are in `moves.py`, the ping tiebreak in `reach.py`, a
restart that keeps the groups in `inplace.py`, the phases and the tables of allowed events and phase
changes in `phases.py`; `Failover` mixes them in.
"""

from __future__ import annotations

from .events import (
    Acquire, Action, Command, Connectivity, Eligibility, Event, Exit, Hold, Log, Op, PeerDead, PeerMessage, PeerRestarted,
    PeerReturned, PeerUp, Release, Reply, ResourcesDone, Send, Tick,
)
from .eligibility import ELIGIBLE_FIELD, HealthEligibility
from .inplace import InPlaceRestart
from .moves import Handshake, StandbyMoves
from .phases import PHASE_CHANGES, TRANSITIONS, Phase, PhaseError
from .reach import PING_FIELD, PingReach

__all__ = ["ELIGIBLE_FIELD", "PING_FIELD", "Failover", "Handshake", "Phase"]


class Failover(StandbyMoves, PingReach, HealthEligibility, InPlaceRestart):
    """One node's failover decisions. Construct with the node's view of the configuration."""

    def __init__(self, *, me: str, peer: str, auto_failback: str, settle_timeout: float,
                 handshake_timeout: float, now: float, ping: bool = False, heal_grace: float = 0.0, health: bool = False) -> None:
        self.me = me
        self.peer = peer
        self.auto_failback = auto_failback != "off"      # "legacy" behaves as "on" (documented)
        self.settle_timeout = settle_timeout
        self.handshake_timeout = handshake_timeout
        self.phase = Phase.WAITING     # changed only by `_enter`, as PHASE_CHANGES allows
        self.held = Hold.NONE           # claimed by us (includes an acquisition in progress)
        self.target = Hold.NONE         # what we are converging to
        self.peer_held = Hold.NONE      # what the peer holds, in OUR words (its local = our foreign)
        self.peer_alive = False
        self.peer_stable = False
        self.busy: tuple[Op, Hold] | None = None
        self.failed = Hold.NONE         # categories whose start failed; not retried automatically
        self.handshake: Handshake | None = None
        self.takeover_request: tuple[int, Hold, float] | None = None
        self.settle_deadline: float | None = None
        self.needs_failback = False     # we took the foreign groups because their home node died
        self.since: dict[Hold, float] = {}
        self._last_settled: tuple[Hold, bool] | None = None
        self._now = now
        # With ping nodes configured nothing is reachable until one answers: a node must not take the VIP
        # at start-up before it knows it is on the right side.
        self.reachable = not ping
        self.pinged = ping
        self.peer_reachable = True      # the peer's own verdict (hbvip field in its report; Heartbeat: always)
        self.unreachable: tuple[str, ...] = ()
        self.reclaim = False            # ping came back: ask for our own groups when the peer is settled
        self.both_starting = False      # the peer said `starting` while we were still unreachable
        self.unclaimed_at: float | None = None   # ping came back: take what nobody holds at this time
        self.heal_grace = heal_grace    # ping came back, peer dead: how long to listen for it first
        self.orphans_at: float | None = None     # ... and when that ends
        self._init_eligibility(health)    # hbvip.cf's checks: which categories we (and the peer) may hold

    # ---- queries -----------------------------------------------------------------------------
    @property
    def stable(self) -> bool:
        """Heartbeat's `isstable`: no resource work running or pending, no standby in flight."""
        return (self.busy is None and self.handshake is None and self.held == self.target
                and self.phase in (Phase.RUNNING, Phase.STOPPED))

    @property
    def status_word(self) -> str:
        return "active" if self.phase not in (Phase.WAITING,) else "up"

    def next_deadline(self) -> float:
        pending = (self.settle_deadline, self.handshake.deadline if self.handshake else None,
                   self.takeover_request[2] if self.takeover_request else None, self.unclaimed_at, self.orphans_at)
        return min((t for t in pending if t is not None), default=float("inf"))

    # ---- the one entry point -----------------------------------------------------------------
    def _enter(self, phase: Phase) -> None:
        """Every phase change goes through here and must be in PHASE_CHANGES (staying put is no change)."""
        if phase is not self.phase and phase not in PHASE_CHANGES[self.phase]:
            raise PhaseError(f"failover phase {self.phase.value} -> {phase.value} is not allowed")
        self.phase = phase

    def handle(self, event: Event, now: float) -> list[Action]:
        self._now = now
        if type(event) not in TRANSITIONS[self.phase]:
            return [Log("debug", "fsm.ignored", None, {"phase": self.phase.value, "event": type(event).__name__})]
        out: list[Action] = []
        if isinstance(event, Tick):
            out += self._on_tick(now)
        elif isinstance(event, PeerUp):
            out += self._on_peer_up()
        elif isinstance(event, PeerRestarted):
            out += self._on_peer_restarted()
        elif isinstance(event, PeerDead):
            out += self._on_peer_dead(event)
        elif isinstance(event, PeerReturned):
            out += self._on_peer_returned()
        elif isinstance(event, PeerMessage):
            out += self._on_message(event, now)
        elif isinstance(event, ResourcesDone):
            out += self._on_done(event)
        elif isinstance(event, Command):
            out += self._on_command(event, now)
        elif isinstance(event, Connectivity):
            out += self._on_connectivity(event)
        elif isinstance(event, Eligibility):
            out += self._on_eligibility(event)
        out += self._drive()
        return out

    # ---- membership events -------------------------------------------------------------------
    def _on_peer_up(self) -> list[Action]:
        self.peer_alive = True
        self.peer_stable = False
        if self.phase is Phase.WAITING:
            self._enter(Phase.STARTING)
            self.settle_deadline = self._now + self.settle_timeout
            return [Log("info", "comm.up", "Comm_now_up(): updating status to active"), Send("starting")]
        if self.phase in (Phase.RUNNING, Phase.STARTING):
            # The peer (re)joined while we run: tell it what we hold so it can decide.
            return [self._report()]
        return []

    def _on_peer_restarted(self) -> list[Action]:
        """Whatever the peer held died with its old process (its VIPs are removed at its start)."""
        out = self._abort_handshake("the peer restarted")
        self.peer_held = Hold.NONE
        self.peer_stable = False
        return out

    def _on_peer_dead(self, event: PeerDead) -> list[Action]:
        self.peer_alive = False
        self.peer_stable = True          # a dead node is stable: it holds nothing and will not move
        self.peer_held = Hold.NONE
        out = self._abort_handshake("the peer is dead")
        if self.takeover_request is not None:
            rid, _unused, _unused = self.takeover_request
            self.takeover_request = None
            out.append(Reply(rid, False, f"{self.peer} died during the takeover; taking over as after a failure"))
        self.settle_deadline = None
        if self.phase is Phase.SHUTDOWN:
            return out
        if self.phase in (Phase.WAITING, Phase.STARTING):
            self._enter(Phase.RUNNING)
            out.append(Log("info", "comm.up", "Comm_now_up(): updating status to active"))
        if not self.reachable:
            out.append(Log("warning", "takeover.refused",
                           f"Not taking over from {self.peer}: {self.holding_nothing_because}",
                           {"from": self.peer, "graceful": event.graceful, "unreachable": ",".join(self.unreachable)}))
            return out
        missing = self.reach & ~self.target
        out += self._refused_on_death()
        if missing:
            out.append(Log("info", "takeover.start", f"Resources being acquired from {self.peer}.",
                           {"from": self.peer, "graceful": event.graceful, "hold": missing.word}))
        self.target = (self.reach | self.held) & ~self.failed    # an ineligible holder keeps it: nobody else may
        if self.target & Hold.FOREIGN:
            # Whatever we hold of the peer's goes back when it returns (also when a failback that had
            # started was cut short by this death: we never gave those groups away).
            self.needs_failback = True
        return out

    def _on_peer_returned(self) -> list[Action]:
        """Partition healed: both may hold the same groups. Exchange reports; `_reconcile` decides."""
        self.peer_alive = True
        self.peer_stable = False
        self.peer_held = Hold.NONE
        return [self._report()]

    # ---- messages from the peer ------------------------------------------------------------------
    def _on_message(self, msg: PeerMessage, now: float) -> list[Action]:
        if msg.type == "starting":
            return self._on_peer_starting()
        if msg.type == "resource":
            return self._on_peer_report(msg.fields)
        if msg.type == "ask_resources":
            return self._on_ask_resources(msg.fields, now)
        if msg.type == "hb_takeover":
            return self._on_hb_takeover(msg.fields, now)
        return []

    def _on_peer_starting(self) -> list[Action]:
        self.peer_alive = True
        self.peer_stable = False
        self.peer_held = Hold.NONE
        if self.phase is Phase.STARTING and self.held == Hold.NONE and self.busy is None:
            if not self.reachable:
                self.both_starting = True       # decided when a ping node answers (or at the settle timeout)
                return []
            # Both starting together: each takes its own groups now, nobody can collide on them.
            self.settle_deadline = None
            self._enter(Phase.RUNNING)
            self.target = Hold.LOCAL & ~self.failed & self.reach
            return [Log("info", "start.both", "Both nodes starting: acquiring local resources.")]
        return [self._report()]

    def _on_peer_report(self, fields: dict[str, str]) -> list[Action]:
        theirs = Hold.from_word(fields.get("rsc_hold"))
        if theirs is None:
            return [Log("warning", "packet.bad_resource", None, {"rsc_hold": fields.get("rsc_hold")})]
        was_stable = self.peer_stable
        self.peer_alive = True
        self.peer_held = theirs.flipped()
        self.peer_stable = fields.get("isstable", "1") == "1"
        self.peer_reachable = fields.get(PING_FIELD, "1") != "0"
        self._read_peer_eligibility(fields)
        out: list[Action] = []
        if self.peer_stable and not was_stable:
            out.append(Log("info", "peer.stable", "remote resource transition completed."))
        if self.phase is Phase.STARTING and self.peer_stable and self.reachable:
            # Principle 1: the other side is stable -> take every unclaimed category.
            self._enter(Phase.RUNNING)
            self.settle_deadline = None
            self.target = Hold.ALL & ~self.peer_held & ~self.failed & self.reach
            return out
        if self.phase is Phase.RUNNING and self.peer_stable and self.handshake is None and self.busy is None:
            out += self._reconcile()
            out += self._take_unclaimed()
        return out

    # ---- resource work ---------------------------------------------------------------------------
    def _on_done(self, done: ResourcesDone) -> list[Action]:
        self.busy = None
        out: list[Action] = []
        if done.op is Op.ACQUIRE:
            if done.ok:
                self.since[done.hold] = self._now
                if done.hold & Hold.FOREIGN:
                    out.append(Log("info", "takeover.done", "mach_down takeover complete." if self.needs_failback
                                   else "foreign HA resource acquisition completed.", {"hold": done.hold.word}))
            else:
                self.held &= ~done.hold
                self.target &= ~done.hold
                self.failed |= done.hold
                out.append(Log("error", "acquire.failed",
                               f"{done.hold.word} resource acquisition failed: {done.detail}",
                               {"hold": done.hold.word, "detail": done.detail}))
            out += self._moves_after_acquire(done)
        else:
            if not done.ok:
                out.append(Log("error", "release.failed",
                               f"{done.hold.word} resource release reported errors: {done.detail}",
                               {"hold": done.hold.word, "detail": done.detail}))
            out += self._moves_after_release()
        return out

    def _drive(self) -> list[Action]:
        """Start the next resource operation towards `target`, one at a time; report when settled."""
        if self.busy is not None or self.phase is Phase.STOPPED:
            return []
        adopted = self._adopt_orphans()
        give_up = self.held & ~self.target
        if give_up:
            self.held &= ~give_up
            self.busy = (Op.RELEASE, give_up)
            reason = ("shutdown" if self.phase is Phase.SHUTDOWN else self.handshake.reason if self.handshake
                      else "ping lost" if not self.reachable else "partition")
            release: list[Action] = [Release(give_up, reason)]
            if self.handshake is not None:
                release.insert(0, self._report(info="standby", stable=False))
            return release
        take = self.target & ~self.held
        if take and (not self.peer_alive or not (take & self.peer_held)):
            self.held |= take
            self.busy = (Op.ACQUIRE, take)
            return [*adopted, Acquire(take, "peer dead" if not self.peer_alive else "unclaimed")]
        if self.phase is Phase.SHUTDOWN:
            self._enter(Phase.STOPPED)
            return [self._report(info="shutdown", stable=False), Send("shutdone", (("st", "dead"),)),
                    Log("info", "shutdown.done", f"{self.me} hbvip shutdown complete."), Exit()]
        out: list[Action] = []
        if self.phase is Phase.RUNNING and self._settled_now():
            out.append(self._report(stable=True))
        if (self.auto_failback and self.needs_failback and self.peer_alive and self.peer_stable and self.peer_reachable
                and self.peer_eligible & self.held & Hold.FOREIGN and self.phase is Phase.RUNNING and self.handshake is None):
            # The foreign groups' home node is back and settled: give them back (Heartbeat's auto_failback).
            self.needs_failback = False
            out.append(Log("info", "failback.start", "auto_failback: giving foreign resources back",
                           {"to": self.peer}))
            out += self._start_standby(Hold.FOREIGN, self._now, request_id=0)
        out += self._reclaim_own()
        out += self._health_moves()
        return out

    def _settled_now(self) -> bool:
        """True exactly once per transition into stability, so each settle sends one report."""
        key = (self.held, self.handshake is None)
        if self.stable and self._last_settled != key:
            self._last_settled = key
            return True
        if not self.stable:
            self._last_settled = None
        return False

    def _on_tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self.settle_deadline is not None and now >= self.settle_deadline:
            # Principle 2: nobody became stable in time -> take our unclaimed local groups only.
            self.settle_deadline = None
            if self.phase is Phase.STARTING:
                self._enter(Phase.RUNNING)
                self.target = Hold.LOCAL & ~self.peer_held & ~self.failed & self.reach
                out.append(Log("info", "start.timeout", "No stable peer report: acquiring unclaimed local resources."))
        if self.unclaimed_at is not None and now >= self.unclaimed_at:
            self.unclaimed_at = None
            if self.phase is Phase.RUNNING and self.peer_stable and self.handshake is None and self.busy is None:
                out += self._take_unclaimed()
        out += self._take_orphans(now)
        out += self._moves_on_tick(now)
        return out

    # ---- helpers ---------------------------------------------------------------------------------
    def _report(self, *, info: str | None = None, stable: bool | None = None) -> Send:
        body: list[tuple[str, str | bytes]] = [("rsc_hold", self.held.word)]
        if info:
            body.append(("info", info))
        body += [("isstable", "1" if (self.stable if stable is None else stable) else "0"), ("rtype", "full")]
        if self.pinged:
            body.append((PING_FIELD, "1" if self.reachable else "0"))
        body += self._eligibility_field()
        return Send("resource", tuple(body))
