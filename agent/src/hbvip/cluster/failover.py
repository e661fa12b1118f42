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
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .events import (
    Acquire, Action, Announce, Command, Connectivity, Event, Exit, Hold, Log, PeerDead, PeerMessage, PeerRestarted,
    PeerReturned, PeerUp, Release, Reply, ResourcesDone, Send, Tick,
)


class Phase(enum.Enum):
    WAITING = "waiting"        # peer not heard yet; initdead running
    STARTING = "starting"      # we said `starting`, waiting for the peer's resource report
    RUNNING = "running"        # normal operation
    SHUTDOWN = "shutdown"      # releasing everything before exit
    STOPPED = "stopped"


#: Which event kinds each phase accepts; anything else is logged and ignored. Enforced in `handle`.
TRANSITIONS: dict[Phase, frozenset[type]] = {
    Phase.WAITING: frozenset({Tick, PeerUp, PeerDead, PeerRestarted, PeerMessage, Command, ResourcesDone,
                              Connectivity}),
    Phase.STARTING: frozenset({Tick, PeerUp, PeerDead, PeerRestarted, PeerReturned, PeerMessage, Command,
                               ResourcesDone, Connectivity}),
    Phase.RUNNING: frozenset({Tick, PeerUp, PeerDead, PeerRestarted, PeerReturned, PeerMessage, Command,
                              ResourcesDone, Connectivity}),
    Phase.SHUTDOWN: frozenset({Tick, PeerUp, PeerDead, PeerRestarted, PeerReturned, PeerMessage, Command,
                               ResourcesDone, Connectivity}),
    Phase.STOPPED: frozenset({Tick}),
}

_WHICH = {"all": Hold.ALL, "local": Hold.LOCAL, "foreign": Hold.FOREIGN}
#: Extra field of our `resource` reports (ping configured): "0" = this node reaches no ping node, so the
#: peer does not offer it groups (auto_failback) that it would have to refuse. Heartbeat ignores it.
PING_FIELD = "hbvip_ping"


@dataclass
class Handshake:
    """One run of the standby protocol. `hold` is always the giver's view (as on the wire)."""

    role: str                  # "giver" | "taker"
    hold: Hold
    step: str                  # giver: asked -> releasing -> released ; taker: accepted -> acquiring
    deadline: float
    request_id: int = 0        # the CLI request to answer when it completes (0 = none)


class Failover:
    """One node's failover decisions. Construct with the node's view of the configuration."""

    def __init__(self, *, me: str, peer: str, auto_failback: str, settle_timeout: float,
                 handshake_timeout: float, now: float, ping: bool = False) -> None:
        self.me = me
        self.peer = peer
        self.auto_failback = auto_failback != "off"      # "legacy" behaves as "on" (documented)
        self.settle_timeout = settle_timeout
        self.handshake_timeout = handshake_timeout
        self.phase = Phase.WAITING
        self.held = Hold.NONE           # claimed by us (includes an acquisition in progress)
        self.target = Hold.NONE         # what we are converging to
        self.peer_held = Hold.NONE      # what the peer holds, in OUR words (its local = our foreign)
        self.peer_alive = False
        self.peer_stable = False
        self.busy: tuple[str, Hold] | None = None
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

    # ---- queries -----------------------------------------------------------------------------
    @property
    def stable(self) -> bool:
        """Heartbeat's `isstable`: no resource work running or pending, no standby in flight."""
        return (self.busy is None and self.handshake is None and self.held == self.target
                and self.phase in (Phase.RUNNING, Phase.STOPPED))

    @property
    def status_word(self) -> str:
        return "active" if self.phase not in (Phase.WAITING,) else "up"

    @property
    def reach(self) -> Hold:
        """What this node may hold at all: everything, or nothing while it reaches no ping node."""
        return Hold.ALL if self.reachable else Hold.NONE

    @property
    def holding_nothing_because(self) -> str | None:
        """Why this node holds nothing when the reason is its own connectivity (for status and logs)."""
        if self.reachable:
            return None
        return f"no ping node reachable ({', '.join(self.unreachable)})" if self.unreachable \
            else "no ping node reachable"

    def next_deadline(self) -> float:
        t = float("inf")
        if self.settle_deadline is not None:
            t = min(t, self.settle_deadline)
        if self.handshake is not None:
            t = min(t, self.handshake.deadline)
        if self.takeover_request is not None:
            t = min(t, self.takeover_request[2])
        if self.unclaimed_at is not None:
            t = min(t, self.unclaimed_at)
        return t

    # ---- the one entry point -----------------------------------------------------------------
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
        out += self._drive()
        return out

    # ---- membership events -------------------------------------------------------------------
    def _on_peer_up(self) -> list[Action]:
        self.peer_alive = True
        self.peer_stable = False
        if self.phase is Phase.WAITING:
            self.phase = Phase.STARTING
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
            self.phase = Phase.RUNNING
            out.append(Log("info", "comm.up", "Comm_now_up(): updating status to active"))
        if not self.reachable:
            out.append(Log("warning", "takeover.refused",
                           f"Not taking over from {self.peer}: {self.holding_nothing_because}",
                           {"from": self.peer, "graceful": event.graceful, "unreachable": ",".join(self.unreachable)}))
            return out
        missing = Hold.ALL & ~self.target
        if missing:
            out.append(Log("info", "takeover.start", f"Resources being acquired from {self.peer}.",
                           {"from": self.peer, "graceful": event.graceful, "hold": missing.word}))
        self.target = Hold.ALL & ~self.failed
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
            # Heartbeat's hb_takeover names the groups from the asker's side; we give up their mirror image
            # through the standby protocol, as its rc.d/hb_takeover does by running hb_standby.
            which = Hold.from_word(msg.fields.get("rsc_hold"))
            if which is None:
                return [Log("warning", "takeover.bad_request", None, {"fields": dict(msg.fields)})]
            return self._start_standby(which.flipped() & self.held, now, request_id=0)
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
            self.phase = Phase.RUNNING
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
        out: list[Action] = []
        if self.peer_stable and not was_stable:
            out.append(Log("info", "peer.stable", "remote resource transition completed."))
        if self.phase is Phase.STARTING and self.peer_stable and self.reachable:
            # Principle 1: the other side is stable -> take every unclaimed category.
            self.phase = Phase.RUNNING
            self.settle_deadline = None
            self.target = Hold.ALL & ~self.peer_held & ~self.failed & self.reach
            return out
        if self.phase is Phase.RUNNING and self.peer_stable and self.handshake is None and self.busy is None:
            out += self._reconcile()
            out += self._take_unclaimed()
        return out

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

    def _on_ask_resources(self, fields: dict[str, str], now: float) -> list[Action]:
        info = fields.get("info")
        hold = Hold.from_word(fields.get("rsc_hold")) or Hold.ALL
        hs = self.handshake
        if info == "me":
            if hs is not None or self.busy is not None or self.phase is not Phase.RUNNING:
                return [Log("warning", "standby.ignored",
                            f"standby message [me] from {self.peer} ignored.  local resources in flux.")]
            if not self.reachable:
                return [Log("warning", "standby.ignored",
                            f"standby message [me] from {self.peer} ignored: {self.holding_nothing_because}")]
            self.peer_stable = False
            self.handshake = Handshake("taker", hold, "accepted", now + self.handshake_timeout)
            return [Log("info", "standby.peer_asks", f"{self.peer} wants to go standby [{hold.word}]"),
                    Send("ask_resources", (("rsc_hold", hold.word), ("info", "other")))]
        if info == "other" and hs is not None and hs.role == "giver" and hs.step == "asked":
            hs.step = "releasing"
            hs.deadline = now + self.handshake_timeout
            self.target &= ~hs.hold
            self.peer_stable = False
            return [Log("info", "standby.accepted",
                        f"standby: {self.peer} can take our {hs.hold.word} resources"),
                    Log("info", "standby.release", f"give up {hs.hold.word} HA resources (standby).")]
        if info == "done" and hs is not None and hs.role == "taker" and hs.step == "accepted":
            hs.step = "acquiring"
            hs.deadline = now + self.handshake_timeout
            mine = hs.hold.flipped()
            self.peer_held &= ~mine
            self.target |= mine
            self.failed &= ~mine
            return [Log("info", "standby.acquire", f"standby: acquire [{hs.hold.word}] resources from {self.peer}")]
        if info == "done" and hs is not None and hs.role == "giver" and hs.step == "released":
            self.handshake = None
            out: list[Action] = [Log("info", "standby.complete",
                                     f"Other node completed standby takeover of {hs.hold.word} resources.")]
            if hs.request_id:
                out.append(Reply(hs.request_id, True, f"{hs.hold.word} resources now served by {self.peer}"))
            self.peer_stable = True
            self.peer_held |= hs.hold.flipped()
            out.append(self._report())
            return out
        return [Log("debug", "standby.unexpected", None, {"info": info, "state": hs.step if hs else None})]

    # ---- resource work ---------------------------------------------------------------------------
    def _on_done(self, done: ResourcesDone) -> list[Action]:
        self.busy = None
        out: list[Action] = []
        if done.op == "acquire":
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
            hs = self.handshake
            if hs is not None and hs.role == "taker" and hs.step == "acquiring" and not (self.target & ~self.held):
                self.handshake = None
                out.append(Send("ask_resources", (("rsc_hold", hs.hold.word), ("info", "done"))))
                out.append(Log("info", "standby.acquired", f"Standby resource acquisition done [{hs.hold.word}]."))
            if self.takeover_request is not None and self.handshake is None:
                rid, want, _unused = self.takeover_request
                if not done.ok or not (want & ~self.held):
                    self.takeover_request = None
                    out.append(Reply(rid, done.ok, "takeover complete" if done.ok else
                                     f"takeover failed: {done.detail}"))
        else:
            if not done.ok:
                out.append(Log("error", "release.failed",
                               f"{done.hold.word} resource release reported errors: {done.detail}",
                               {"hold": done.hold.word, "detail": done.detail}))
            hs = self.handshake
            if hs is not None and hs.role == "giver" and hs.step == "releasing" and not (self.held & hs.hold):
                hs.step = "released"
                out.append(Log("info", "standby.released",
                               f"{hs.hold.word} HA resource release completed (standby)."))
                out.append(Send("ask_resources", (("rsc_hold", hs.hold.word), ("info", "done"))))
        return out

    def _drive(self) -> list[Action]:
        """Start the next resource operation towards `target`, one at a time; report when settled."""
        if self.busy is not None or self.phase is Phase.STOPPED:
            return []
        give_up = self.held & ~self.target
        if give_up:
            self.held &= ~give_up
            self.busy = ("release", give_up)
            reason = ("shutdown" if self.phase is Phase.SHUTDOWN else "standby" if self.handshake
                      else "ping lost" if not self.reachable else "partition")
            release: list[Action] = [Release(give_up, reason)]
            if self.handshake is not None:
                release.insert(0, self._report(info="standby", stable=False))
            return release
        take = self.target & ~self.held
        if take and (not self.peer_alive or not (take & self.peer_held)):
            self.held |= take
            self.busy = ("acquire", take)
            return [Acquire(take, "peer dead" if not self.peer_alive else "unclaimed")]
        if self.phase is Phase.SHUTDOWN:
            self.phase = Phase.STOPPED
            return [self._report(info="shutdown", stable=False), Send("shutdone", (("st", "dead"),)),
                    Log("info", "shutdown.done", f"{self.me} hbvip shutdown complete."), Exit()]
        out: list[Action] = []
        if self.phase is Phase.RUNNING and self._settled_now():
            out.append(self._report(stable=True))
        if (self.auto_failback and self.needs_failback and self.peer_alive and self.peer_stable
                and self.peer_reachable and self.phase is Phase.RUNNING and self.handshake is None and self.held & Hold.FOREIGN):
            # The foreign groups' home node is back and settled: give them back (Heartbeat's auto_failback).
            self.needs_failback = False
            out.append(Log("info", "failback.start", "auto_failback: giving foreign resources back",
                           {"to": self.peer}))
            out += self._start_standby(Hold.FOREIGN, self._now, request_id=0)
        out += self._reclaim_own()
        return out

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

    def _settled_now(self) -> bool:
        """True exactly once per transition into stability, so each settle sends one report."""
        key = (self.held, self.handshake is None)
        if self.stable and self._last_settled != key:
            self._last_settled = key
            return True
        if not self.stable:
            self._last_settled = None
        return False

    # ---- operator commands -----------------------------------------------------------------------
    def _on_command(self, cmd: Command, now: float) -> list[Action]:
        if cmd.kind == "shutdown":
            out = self._abort_handshake("shutdown requested")
            if self.takeover_request is not None:
                out.append(Reply(self.takeover_request[0], False, "shutdown requested"))
                self.takeover_request = None
            self.phase = Phase.SHUTDOWN
            self.target = Hold.NONE
            out.append(Log("info", "shutdown.start", "Giving up all HA resources."))
            return out
        which = _WHICH.get(cmd.which)
        if which is None:
            return [Reply(cmd.request_id, False, f"unknown resource set {cmd.which!r}: use all, local or foreign")]
        if self.phase is not Phase.RUNNING:
            return [Reply(cmd.request_id, False, f"not ready: {self.phase.value}")]
        if self.handshake is not None or self.busy is not None or self.takeover_request is not None:
            return [Reply(cmd.request_id, False, "a resource transition is in progress; try again")]
        if cmd.kind == "standby":
            give = which & self.held
            if not give:
                return [Reply(cmd.request_id, True, "nothing to give up: already standby")]
            if not self.peer_alive:
                return [Reply(cmd.request_id, False, f"{self.peer} is dead: nobody could take over")]
            return self._start_standby(give, now, cmd.request_id)
        if cmd.kind == "takeover":
            want = which & ~self.held
            if not want:
                return [Reply(cmd.request_id, True, "already holding them")]
            if not self.reachable:
                return [Reply(cmd.request_id, False, f"refused: {self.holding_nothing_because}")]
            if not self.peer_alive:
                self.target |= want
                self.failed &= ~want
                self.takeover_request = (cmd.request_id, want, now + self.handshake_timeout)
                return []
            self.takeover_request = (cmd.request_id, want, now + self.handshake_timeout)
            return [Send("hb_takeover", (("rsc_hold", want.word),))]
        return [Reply(cmd.request_id, False, f"unknown command {cmd.kind!r}")]

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
                self.phase = Phase.RUNNING
                self.settle_deadline = None
                self.target = Hold.ALL & ~self.peer_held & ~self.failed
            elif self.both_starting:
                self.phase = Phase.RUNNING
                self.settle_deadline = None
                self.target = Hold.LOCAL & ~self.failed
                out.append(Log("info", "start.both", "Both nodes starting: acquiring local resources."))
            return out
        if self.phase is not Phase.RUNNING:
            return out
        if not self.peer_alive:
            out.append(Log("info", "takeover.start", f"Resources being acquired from {self.peer}.",
                           {"from": self.peer, "reason": "ping reachable", "hold": Hold.ALL.word}))
            self.target = Hold.ALL & ~self.failed
            self.needs_failback = bool(self.target & Hold.FOREIGN)
            return out
        # Our own groups at once if nobody holds them (they cannot collide: the peer takes them only as
        # unclaimed); the peer's groups a settle time later, so a peer that regains its ping node at the
        # same moment (a router reboot) takes its own first instead of both taking them.
        self.target |= Hold.LOCAL & ~self.peer_held & ~self.failed
        self.reclaim = True
        self.unclaimed_at = self._now + self.settle_timeout
        out.append(self._report())       # the peer learns that it may hand groups back to us again
        return out

    def _lose_reach(self) -> list[Action]:
        why = self.holding_nothing_because
        out: list[Action] = [Log("warning", "ping.lost", f"{why}: giving up all HA resources",
                                 {"unreachable": ",".join(self.unreachable), "hold": self.held.word})]
        self.reclaim = False
        self.unclaimed_at = None
        self.needs_failback = False
        hs = self.handshake
        if hs is not None and hs.role == "taker":
            out += self._abort_handshake(why or "ping lost")
        if self.takeover_request is not None:
            out.append(Reply(self.takeover_request[0], False, f"takeover aborted: {why}"))
            self.takeover_request = None
        if self.phase is not Phase.SHUTDOWN:
            self.target = Hold.NONE
        if self.phase in (Phase.RUNNING, Phase.STARTING) and self.peer_alive:
            out.append(self._report())   # even holding nothing: the peer must not offer us groups now
        return out

    def _start_standby(self, give: Hold, now: float, request_id: int) -> list[Action]:
        if not give or self.handshake is not None or not self.peer_alive:
            return []
        self.handshake = Handshake("giver", give, "asked", now + self.handshake_timeout, request_id)
        return [Send("ask_resources", (("rsc_hold", give.word), ("info", "me")))]

    def _abort_handshake(self, why: str) -> list[Action]:
        hs = self.handshake
        if hs is None:
            return []
        self.handshake = None
        out: list[Action] = [Log("warning", "standby.aborted", f"standby aborted: {why}",
                                 {"role": hs.role, "step": hs.step})]
        if hs.request_id:
            out.append(Reply(hs.request_id, False, f"standby aborted: {why}"))
        return out

    def _on_tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self.settle_deadline is not None and now >= self.settle_deadline:
            # Principle 2: nobody became stable in time -> take our unclaimed local groups only.
            self.settle_deadline = None
            if self.phase is Phase.STARTING:
                self.phase = Phase.RUNNING
                self.target = Hold.LOCAL & ~self.peer_held & ~self.failed & self.reach
                out.append(Log("info", "start.timeout", "No stable peer report: acquiring unclaimed local resources."))
        if self.unclaimed_at is not None and now >= self.unclaimed_at:
            self.unclaimed_at = None
            if self.phase is Phase.RUNNING and self.peer_stable and self.handshake is None and self.busy is None:
                out += self._take_unclaimed()
        hs = self.handshake
        if hs is not None and now >= hs.deadline and self.busy is None:
            out += self._abort_handshake(f"no answer from {self.peer} in step {hs.step}")
        if self.takeover_request is not None and now >= self.takeover_request[2]:
            rid, _unused, _unused = self.takeover_request
            self.takeover_request = None
            out.append(Reply(rid, False, f"takeover timed out: {self.peer} did not hand over"))
        return out

    # ---- helpers ---------------------------------------------------------------------------------
    def _report(self, *, info: str | None = None, stable: bool | None = None) -> Send:
        body: list[tuple[str, str | bytes]] = [("rsc_hold", self.held.word)]
        if info:
            body.append(("info", info))
        body += [("isstable", "1" if (self.stable if stable is None else stable) else "0"), ("rtype", "full")]
        if self.pinged:
            body.append((PING_FIELD, "1" if self.reachable else "0"))
        return Send("resource", tuple(body))
