"""Service health inside the failover machine: a node ineligible for a category (a check failed, a
monitored resource failed past its restarts, a tracked link is down) gives it to an eligible peer and
never takes one it is ineligible for. `Failover` mixes this in; the verdicts come from `health.py`.

* The hand-over is Heartbeat's standby protocol (`ask_resources` me / other / done), so the release
  runs in haresources order and a real Heartbeat peer takes the groups as after `hb_standby`. The
  release reason is the health reason (`check failed: NAME`, `monitor failed: SCRIPT`, `link down: IF`).
* Eligibility travels in our `resource` reports (`ELIGIBLE_FIELD`, ignored by Heartbeat; a peer without
  it is eligible for everything), so neither node offers the other what it would refuse, and a taker
  that is ineligible itself ignores the offer.
* When neither node is eligible for a category its holder keeps it and both say `degraded`: nothing
  moves until one of them is eligible again, so a group never ping-pongs.
* A node eligible again takes what nobody holds and, with auto_failback, asks for its own groups back
  (`hb_takeover`, as after a ping node answers again) once the peer is settled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .events import Action, Eligibility, Hold, Log, Op, Send
from .phases import Phase

if TYPE_CHECKING:
    from .moves import Handshake

#: Extra field of our `resource` reports: the categories this node may hold, in its own words.
ELIGIBLE_FIELD = "hbvip_eligible"


class HealthEligibility:
    """Eligibility of this node and its peer per category (state declared in `Failover`)."""

    if TYPE_CHECKING:
        peer: str
        phase: Phase
        held: Hold
        peer_held: Hold
        target: Hold
        failed: Hold
        peer_alive: bool
        peer_stable: bool
        peer_reachable: bool
        reachable: bool
        auto_failback: bool
        busy: tuple[Op, Hold] | None
        handshake: Handshake | None
        _now: float

        def _report(self, *, info: str | None = None, stable: bool | None = None) -> Send: ...

        def _start_standby(self, give: Hold, now: float, request_id: int, reason: str = "standby") -> list[Action]: ...

        def _take_unclaimed(self) -> list[Action]: ...

    def _init_eligibility(self, health: bool) -> None:
        self.health = health                # hbvip.cf has health directives: report eligibility
        self.eligible = Hold.ALL
        self.ineligible_because = ""
        self.peer_eligible = Hold.ALL       # in OUR words; a Heartbeat peer says nothing: everything
        self.regained = Hold.NONE           # categories eligible again whose return we may ask for

    @property
    def degraded(self) -> Hold:
        """Categories neither node may hold: they stay where they are."""
        peer = self.peer_eligible if self.peer_alive else Hold.NONE
        return Hold.ALL & ~self.eligible & ~peer

    def _on_eligibility(self, event: Eligibility) -> list[Action]:
        was = self.eligible
        self.eligible, self.ineligible_because = event.hold, event.reason
        if event.hold == was:
            return []
        lost, won = was & ~event.hold, event.hold & ~was
        out: list[Action] = []
        if lost:
            self.regained &= ~lost
            out.append(Log("warning", "health.ineligible", f"{event.reason}: not eligible for {lost.word} resources",
                           {"hold": lost.word, "reason": event.reason}))
            # Not yet started: the start-up decision then takes only what we may hold.
            self.target &= ~(lost & ~self.held)
        if won:
            self.regained |= won
            out.append(Log("info", "health.eligible", f"Eligible again for {won.word} resources",
                           {"hold": won.word}))
            if self.phase is Phase.RUNNING and not self.peer_alive and self.reachable:
                self.target |= won & ~self.failed
            elif self.phase is Phase.RUNNING and self.peer_stable and self.handshake is None and self.busy is None:
                out += self._take_unclaimed()
        if self.phase in (Phase.RUNNING, Phase.STARTING) and self.peer_alive:
            out.append(self._report())
        return out

    def _refused_on_death(self) -> list[Action]:
        """The peer died: say which of its groups we do not take because of our health."""
        refused = ~self.eligible & ~self.target & Hold.ALL
        if not refused:
            return []
        return [Log("warning", "takeover.refused",
                    f"Not taking over {refused.word} resources from {self.peer}: {self.ineligible_because}",
                    {"from": self.peer, "reason": self.ineligible_because})]

    def _read_peer_eligibility(self, fields: dict[str, str]) -> None:
        theirs = Hold.from_word(fields.get(ELIGIBLE_FIELD, "all"))
        self.peer_eligible = (theirs if theirs is not None else Hold.ALL).flipped()

    def _refuses(self, hold: Hold) -> str | None:
        """Why this node will not take `hold` (in our words) from the peer, or None."""
        return self.ineligible_because or "not eligible" if hold & ~self.eligible else None

    def _adopt_orphans(self) -> list[Action]:
        """Before `_drive` starts work: a category nobody holds and the settled peer may not hold is ours
        (at start-up its report may have come while we were busy, so this is not left to the report)."""
        if not (self.phase is Phase.RUNNING and self.peer_alive and self.peer_stable and self.handshake is None):
            return []
        orphan = self.reach & ~self.peer_eligible & ~self.target & ~self.held & ~self.peer_held & ~self.failed
        if not orphan:
            return []
        self.target |= orphan
        return [Log("warning", "takeover.unclaimed", f"{orphan.word} resources held by nobody: acquiring them",
                    {"hold": orphan.word, "peer": self.peer})]

    def _health_moves(self) -> list[Action]:
        """Between turns of `_drive`: hand over what we may not hold, ask back what we may hold again."""
        if not (self.phase is Phase.RUNNING and self.peer_alive and self.peer_stable and self.handshake is None
                and self.busy is None):
            return []
        give = self.held & ~self.eligible & self.peer_eligible
        if give and self.peer_reachable:
            return [Log("warning", "health.handover",
                        f"{self.ineligible_because}: giving {give.word} resources to {self.peer}",
                        {"hold": give.word, "to": self.peer, "reason": self.ineligible_because}),
                    *self._start_standby(give, self._now, 0, reason=self.ineligible_because)]
        want = self.regained & Hold.LOCAL & self.eligible & self.peer_held & ~self.held
        self.regained = Hold.NONE
        if want and self.auto_failback:
            return [Log("info", "failback.request", f"auto_failback: asking {self.peer} for our {want.word} resources",
                        {"to": self.peer, "hold": want.word}),
                    Send("hb_takeover", (("rsc_hold", want.word),))]
        return []

    def _eligibility_field(self) -> list[tuple[str, str | bytes]]:
        return [(ELIGIBLE_FIELD, self.eligible.word)] if self.health else []
