"""Moving groups between two live nodes: the 3-phase standby protocol (`ask_resources` me / other /
done) and the operator's `standby`, `takeover` and `shutdown`.

Part of the failover machine (`Failover` mixes this in): the giver releases completely before it says
`done`, and only then does the taker acquire; a request from the CLI is answered when its move ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import dataclass
from .events import Action, Command, CommandKind, Hold, Log, Op, Reply, ResourcesDone, Send
from .phases import Phase, Role, Step

_WHICH = {"all": Hold.ALL, "local": Hold.LOCAL, "foreign": Hold.FOREIGN}


@dataclass
class Handshake:
    """One run of the standby protocol. `hold` is always the giver's view (as on the wire)."""

    role: Role
    hold: Hold
    step: Step
    deadline: float
    request_id: int = 0        # the CLI request to answer when it completes (0 = none)
    reason: str = "standby"    # the giver's release reason (a health failure names itself)


class StandbyMoves:
    """The standby protocol and operator commands of `Failover` (its state is declared there)."""

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
        handshake_timeout: float
        takeover_request: tuple[int, Hold, float] | None
        reachable: bool

        @property
        def holding_nothing_because(self) -> str | None: ...

        def _enter(self, phase: Phase) -> None: ...

        def _refuses(self, hold: Hold) -> str | None: ...

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
            if (why := self._refuses(hold.flipped())) is not None:
                return [Log("warning", "standby.ignored", f"standby message [me] from {self.peer} ignored: {why}")]
            self.peer_stable = False
            self.handshake = Handshake(Role.TAKER, hold, Step.ACCEPTED, now + self.handshake_timeout)
            return [Log("info", "standby.peer_asks", f"{self.peer} wants to go standby [{hold.word}]"),
                    Send("ask_resources", (("rsc_hold", hold.word), ("info", "other")))]
        if info == "other" and hs is not None and hs.role is Role.GIVER and hs.step is Step.ASKED:
            hs.step = Step.RELEASING
            hs.deadline = now + self.handshake_timeout
            self.target &= ~hs.hold
            self.peer_stable = False
            return [Log("info", "standby.accepted",
                        f"standby: {self.peer} can take our {hs.hold.word} resources"),
                    Log("info", "standby.release", f"give up {hs.hold.word} HA resources (standby).")]
        if info == "done" and hs is not None and hs.role is Role.TAKER and hs.step is Step.ACCEPTED:
            hs.step = Step.ACQUIRING
            hs.deadline = now + self.handshake_timeout
            mine = hs.hold.flipped()
            self.peer_held &= ~mine
            self.target |= mine
            self.failed &= ~mine
            return [Log("info", "standby.acquire", f"standby: acquire [{hs.hold.word}] resources from {self.peer}")]
        if info == "done" and hs is not None and hs.role is Role.GIVER and hs.step is Step.RELEASED:
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

    # ---- operator commands -----------------------------------------------------------------------
    def _on_command(self, cmd: Command, now: float) -> list[Action]:
        if cmd.kind is CommandKind.SHUTDOWN:
            out = self._abort_handshake("shutdown requested")
            if self.takeover_request is not None:
                out.append(Reply(self.takeover_request[0], False, "shutdown requested"))
                self.takeover_request = None
            self._enter(Phase.SHUTDOWN)
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
        if cmd.kind is CommandKind.STANDBY:
            give = which & self.held
            if not give:
                return [Reply(cmd.request_id, True, "nothing to give up: already standby")]
            if not self.peer_alive:
                return [Reply(cmd.request_id, False, f"{self.peer} is dead: nobody could take over")]
            return self._start_standby(give, now, cmd.request_id)
        return self._takeover(cmd.request_id, which, now)

    def _takeover(self, request_id: int, which: Hold, now: float) -> list[Action]:
        want = which & ~self.held
        if not want:
            return [Reply(request_id, True, "already holding them")]
        if not self.reachable:
            return [Reply(request_id, False, f"refused: {self.holding_nothing_because}")]
        self.takeover_request = (request_id, want, now + self.handshake_timeout)
        if not self.peer_alive:
            self.target |= want
            self.failed &= ~want
            return []
        return [Send("hb_takeover", (("rsc_hold", want.word),))]

    def _on_hb_takeover(self, fields: dict[str, str], now: float) -> list[Action]:
        """Heartbeat's hb_takeover names the groups from the asker's side; we give up their mirror image
        through the standby protocol, as its rc.d/hb_takeover does by running hb_standby."""
        which = Hold.from_word(fields.get("rsc_hold"))
        if which is None:
            return [Log("warning", "takeover.bad_request", None, {"fields": dict(fields)})]
        return self._start_standby(which.flipped() & self.held, now, request_id=0)

    def _start_standby(self, give: Hold, now: float, request_id: int, reason: str = "standby") -> list[Action]:
        if not give or self.handshake is not None or not self.peer_alive:
            return []
        self.handshake = Handshake(Role.GIVER, give, Step.ASKED, now + self.handshake_timeout, request_id, reason)
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

    # ---- resource work and timers of a move ------------------------------------------------------
    def _moves_after_acquire(self, done: ResourcesDone) -> list[Action]:
        """An acquisition ended: the taker of a standby says `done`; a takeover request is answered."""
        out: list[Action] = []
        hs = self.handshake
        if hs is not None and hs.role is Role.TAKER and hs.step is Step.ACQUIRING and not (self.target & ~self.held):
            self.handshake = None
            out.append(Send("ask_resources", (("rsc_hold", hs.hold.word), ("info", "done"))))
            out.append(Log("info", "standby.acquired", f"Standby resource acquisition done [{hs.hold.word}]."))
        if self.takeover_request is not None and self.handshake is None:
            rid, want, _unused = self.takeover_request
            if not done.ok or not (want & ~self.held):
                self.takeover_request = None
                out.append(Reply(rid, done.ok, "takeover complete" if done.ok else
                                 f"takeover failed: {done.detail}"))
        return out

    def _moves_after_release(self) -> list[Action]:
        """A release ended: the giver of a standby that let go of everything asked says `done`."""
        hs = self.handshake
        if hs is not None and hs.role is Role.GIVER and hs.step is Step.RELEASING and not (self.held & hs.hold):
            hs.step = Step.RELEASED
            return [Log("info", "standby.released", f"{hs.hold.word} HA resource release completed (standby)."),
                    Send("ask_resources", (("rsc_hold", hs.hold.word), ("info", "done")))]
        return []

    def _moves_on_tick(self, now: float) -> list[Action]:
        """A standby step or a takeover request that waited too long for the peer is given up."""
        out: list[Action] = []
        hs = self.handshake
        if hs is not None and now >= hs.deadline and self.busy is None:
            out += self._abort_handshake(f"no answer from {self.peer} in step {hs.step}")
        if self.takeover_request is not None and now >= self.takeover_request[2]:
            rid, _unused, _unused = self.takeover_request
            self.takeover_request = None
            out.append(Reply(rid, False, f"takeover timed out: {self.peer} did not hand over"))
        return out
