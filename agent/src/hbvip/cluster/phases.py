"""The failover machine's vocabulary: its phases and which events and phase changes each allows, and
the roles and steps of the standby protocol. Both tables are checked in one place (`Failover.handle`
and `Failover._enter`), so a phase change missing here is a bug caught by the unit tests, not a state
the daemon drifts into.
"""

from __future__ import annotations

import enum

from .events import (
    Command, Connectivity, Eligibility, PeerDead, PeerMessage, PeerRestarted, PeerReturned, PeerUp, ResourcesDone, Tick,
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
                              Connectivity, Eligibility}),
    Phase.STARTING: frozenset({Tick, PeerUp, PeerDead, PeerRestarted, PeerReturned, PeerMessage, Command,
                               ResourcesDone, Connectivity, Eligibility}),
    Phase.RUNNING: frozenset({Tick, PeerUp, PeerDead, PeerRestarted, PeerReturned, PeerMessage, Command,
                              ResourcesDone, Connectivity, Eligibility}),
    Phase.SHUTDOWN: frozenset({Tick, PeerUp, PeerDead, PeerRestarted, PeerReturned, PeerMessage, Command,
                               ResourcesDone, Connectivity}),
    Phase.STOPPED: frozenset({Tick}),
}

#: The phase changes the machine may make; anything else raises `PhaseError`. Enforced in `_enter`.
PHASE_CHANGES: dict[Phase, frozenset[Phase]] = {
    # the peer was heard (-> starting), declared dead or never heard within initdead (-> running)
    Phase.WAITING: frozenset({Phase.STARTING, Phase.RUNNING, Phase.SHUTDOWN}),
    # a stable peer report, both starting, the settle timeout, the peer's death, a ping node answering
    Phase.STARTING: frozenset({Phase.RUNNING, Phase.SHUTDOWN}),
    Phase.RUNNING: frozenset({Phase.SHUTDOWN}),
    Phase.SHUTDOWN: frozenset({Phase.STOPPED}),   # everything released, the peer told
    Phase.STOPPED: frozenset(),
}


class PhaseError(RuntimeError):
    """A phase change the table does not allow: a bug in the machine."""


class Role(enum.StrEnum):
    """This node's side of one standby protocol run."""

    GIVER = "giver"
    TAKER = "taker"


class Step(enum.StrEnum):
    """Where a standby run is. Giver: asked -> releasing -> released; taker: accepted -> acquiring."""

    ASKED = "asked"
    RELEASING = "releasing"
    RELEASED = "released"
    ACCEPTED = "accepted"
    ACQUIRING = "acquiring"
