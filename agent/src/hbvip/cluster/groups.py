"""Resource groups seen through the failover machine: which groups a category holds, and what
`hbvip status` says of each group.

Heartbeat moves resources per category (`Hold`); operators look at groups. Both views meet here, pure:
a config and the machine's state in, groups and their states out.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from ..config import ResourceGroup
from .events import Hold, Op
from .failover import Failover


class GroupState(enum.Enum):
    """A group's state in `hbvip status` (`groups[].state`)."""

    HELD = "held"                  # this node serves it
    ACQUIRING = "acquiring"        # this node is starting it
    RELEASING = "releasing"        # this node is stopping it
    HELD_BY_PEER = "held_by_peer"  # the peer says it serves it
    FAILED = "failed"              # its start failed here; not retried until an operator asks
    UNSERVED = "unserved"          # nobody serves it

    @property
    def settled(self) -> bool:
        """Will not change without a new event (an operator's move, a death, a return)."""
        return self not in (GroupState.ACQUIRING, GroupState.RELEASING)


def category(group: ResourceGroup, me: str) -> Hold:
    """A group is local when its home node is this node, foreign otherwise (the peer's)."""
    return Hold.LOCAL if group.home_node.lower() == me.lower() else Hold.FOREIGN


def groups_of(groups: Sequence[ResourceGroup], me: str, hold: Hold) -> list[ResourceGroup]:
    """The groups of the categories in `hold`, in haresources order (Heartbeat acquires in file order)."""
    return [g for g in groups if category(g, me) & hold]


def group_state(fo: Failover, cat: Hold) -> GroupState:
    """What `hbvip status` says of a group of category `cat`: work in progress wins over claims."""
    if fo.busy is not None and fo.busy[1] & cat:
        return GroupState.ACQUIRING if fo.busy[0] is Op.ACQUIRE else GroupState.RELEASING
    if fo.held & cat:
        return GroupState.HELD
    if fo.peer_held & cat:
        return GroupState.HELD_BY_PEER
    if fo.failed & cat:
        return GroupState.FAILED
    return GroupState.UNSERVED
