"""Events into and actions out of the cluster state machines.

The machines in this package are pure: the daemon feeds them events stamped with a monotonic time and
carries out the actions they return. Keeping every input and output a plain frozen dataclass is what lets
the whole failover logic run under a fake clock in unit tests, with no sockets, scripts or sleeps.
"""

from __future__ import annotations

import enum

from ..records import dataclass, field


class Hold(enum.IntFlag):
    """Which resource groups a node holds, in Heartbeat's own words (`rsc_hold=` on the wire).

    Heartbeat moves resources per category, not per group: a node's *local* groups are the haresources
    lines whose home node is itself, *foreign* ones are the peer's. The integer values are Heartbeat's
    (`none`=0, `local`=1, `foreign`=2, `all`=3), so the wire word and the bit set convert 1:1.
    """

    NONE = 0
    LOCAL = 1
    FOREIGN = 2
    ALL = LOCAL | FOREIGN

    @property
    def word(self) -> str:
        return _WORDS[int(self)]

    @classmethod
    def from_word(cls, word: str | None) -> Hold | None:
        try:
            return cls(_WORDS.index(word)) if word is not None else None
        except ValueError:
            return None

    def flipped(self) -> Hold:
        """The same groups seen from the peer: my local ones are its foreign ones."""
        return Hold(((self & Hold.LOCAL) << 1) | ((self & Hold.FOREIGN) >> 1))

    # Two holds combined, or one complemented, by table: enum.Flag makes each result through the enum
    # machinery (three Python calls), and the failover machine combines holds a dozen times a turn.
    # Anything else: enum.Flag's way.
    def __and__(self, other: object) -> Hold:
        if other.__class__ is Hold:
            return _MEMBERS[self._value_ & other._value_]  # type: ignore[attr-defined]
        return super().__and__(other)  # type: ignore[no-any-return]

    def __or__(self, other: object) -> Hold:
        if other.__class__ is Hold:
            return _MEMBERS[self._value_ | other._value_]  # type: ignore[attr-defined]
        return super().__or__(other)  # type: ignore[no-any-return]

    def __invert__(self) -> Hold:
        return _MEMBERS[self._value_ ^ 3]  # type: ignore[attr-defined]  # ALL's bits: the complement within them


_WORDS = ("none", "local", "foreign", "all")
_MEMBERS = (Hold.NONE, Hold.LOCAL, Hold.FOREIGN, Hold.ALL)


# ---- events -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tick:
    """Time passed; timers are evaluated. The daemon sends one at the machine's next deadline."""


@dataclass(frozen=True)
class PeerMessage:
    """An authenticated, in-sequence message from the peer (membership already filtered it)."""

    type: str
    fields: dict[str, str]


@dataclass(frozen=True)
class PeerRestarted:
    """The peer came back with a higher generation: whatever it held before is gone."""


@dataclass(frozen=True)
class PeerUp:
    """The peer was heard for the first time (or again after a restart): the link is up."""


@dataclass(frozen=True)
class PeerDead:
    """The peer is gone: silent for its dead time, never heard within initdead, or it said `shutdone`."""

    graceful: bool = False


@dataclass(frozen=True)
class PeerReturned:
    """A peer we had declared dead is heard again with the same generation: a partition healed."""


@dataclass(frozen=True)
class Connectivity:
    """Whether this node reaches at least one of its `ping` nodes (Heartbeat's tiebreaker for two nodes).

    A node cut off from every ping node is the one on the wrong side of a partition: it neither takes nor
    keeps resources. `unreachable` names the ping nodes for the log and status; the daemon sends this only
    when ha.cf has `ping` lines, so without them the machine never leaves its reachable default.
    """

    reachable: bool
    unreachable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Eligibility:
    """Which categories this node may hold by its health checks (`cluster/health.py`), and why not.

    A node ineligible for a category it holds hands it to an eligible peer (standby protocol); it never
    takes one it is ineligible for. The daemon sends this only when hbvip.cf has health directives.
    """

    hold: Hold
    reason: str = ""


class Op(enum.StrEnum):
    """A resource operation on a category: what `Acquire`/`Release` start and `ResourcesDone` ends."""

    ACQUIRE = "acquire"
    RELEASE = "release"


class CommandKind(enum.StrEnum):
    """What an operator (control socket) or a signal asks of the machine."""

    STANDBY = "standby"
    TAKEOVER = "takeover"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class ResourcesDone:
    """A resource operation the machine asked for has finished."""

    op: Op
    hold: Hold
    ok: bool
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", Op(self.op))     # "acquire" is accepted and becomes Op.ACQUIRE


@dataclass(frozen=True)
class Command:
    """An operator request from the control socket or a signal."""

    kind: CommandKind
    which: str = "all"        # "all" | "local" | "foreign" (Heartbeat's hb_standby/hb_takeover words)
    request_id: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", CommandKind(self.kind))   # an unknown kind is a ValueError here


Event = (Tick | PeerMessage | PeerRestarted | PeerUp | PeerDead | PeerReturned | ResourcesDone | Command | Connectivity
         | Eligibility)


# ---- actions ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    """Send a Heartbeat message; `body` are the message-specific fields in wire order."""

    type: str
    body: tuple[tuple[str, str | bytes], ...] = ()


@dataclass(frozen=True)
class Acquire:
    """Take the groups of `hold` (start their resources)."""
    hold: Hold
    reason: str


@dataclass(frozen=True)
class Release:
    """Give up the groups of `hold` (stop their resources)."""
    hold: Hold
    reason: str


@dataclass(frozen=True)
class Announce:
    """Re-send gratuitous ARP for groups already held (split-brain heal: clients must follow us)."""

    hold: Hold


@dataclass(frozen=True)
class Log:
    """A log line: `classic` is Heartbeat's wording (what operators grep for), `event` the structured one."""

    level: str                         # "info" | "warning" | "error" | "debug"
    event: str
    classic: str | None = None
    fields: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """Answer a Command (the CLI waits for this)."""

    request_id: int
    ok: bool
    message: str


@dataclass(frozen=True)
class Retransmit:
    """Re-send our own messages firstseq..lastseq byte-identical from the send history (peer asked)."""

    firstseq: int
    lastseq: int


@dataclass(frozen=True)
class Exit:
    """Everything is released and the peer told; the daemon may exit."""


Action = Send | Acquire | Release | Announce | Log | Reply | Retransmit | Exit
