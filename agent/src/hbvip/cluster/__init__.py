"""Membership timers and the failover state machine: pure, events in, actions out, clock injected."""

from __future__ import annotations

from .events import (
    Acquire, Action, Announce, Command, CommandKind, Connectivity, Eligibility, Event, Exit, Hold, Log, Op, PeerDead, PeerMessage,
    PeerRestarted, PeerReturned, PeerUp, Release, Reply, ResourcesDone, Retransmit, Send, Tick,
)
from .failover import Failover, Phase
from .membership import Incoming, Membership, PeerView

__all__ = [
    "Acquire", "Action", "Announce", "Command", "CommandKind", "Connectivity", "Eligibility", "Event", "Exit", "Failover", "Hold",
    "Incoming", "Log", "Membership", "Op", "PeerDead", "PeerMessage", "PeerRestarted", "PeerReturned", "PeerUp", "PeerView", "Phase",
    "Release", "Reply", "ResourcesDone", "Retransmit", "Send", "Tick",
]
