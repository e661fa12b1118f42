"""The JSON shapes the agent shows the outside world, defined once.

`StatusView` is `hbvip status --json` (the control socket's `status`, the input of the metrics
exporter, what the Ansible module and the tests read); `HaresourcesView` is `hbvip haresources --json`
(the Ansible module edits haresources from it instead of parsing the file a second time); `ExtensionsView`
is `hbvip extensions --json` (the health lines of hbvip.cf, for the same module). Anything that
produces or reads these documents uses these types, so a renamed or added key is one change here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from .config import Problem, ResourceGroup
from .records import asdict

if TYPE_CHECKING:
    from .config.extensions import Extensions


class TimersView(TypedDict):
    keepalive: float
    warntime: float
    deadtime: float
    initdead: float


class PeerStatusView(TypedDict):
    name: str
    state: str                      # membership: "unknown" | "up" | "dead" ...
    hold: str                       # what the peer holds, in its words: none/local/foreign/all
    stable: bool
    last_heard_s: float | None
    deadtime_s: float
    generation: int | None
    late_heartbeats: int
    addresses: list[str]
    config_digest: str | None
    config: str                     # digest_state(): same/different/unknown
    diagnosis: str | None


class GroupHistoryView(TypedDict):
    """How often this node's hold on a group changed, and its last takeover (wall clock, duration)."""

    transitions: int
    last_takeover_at: float | None
    last_takeover_s: float | None


class GroupStatusView(GroupHistoryView):
    key: str
    home_node: str
    holder: str | None
    state: str                      # hbvip.cluster.groups.GroupState values
    resources: list[str]
    vips: list[str]
    since_s: float | None
    eligible: bool                  # this node may hold it (its checks, monitors, tracked links)
    peer_eligible: bool             # the peer says it may (a Heartbeat peer says nothing: True)
    degraded: bool                  # neither may: it stays where it is


class ProbeStatusView(TypedDict):
    """One `check`, `monitor` or `track_interface` of hbvip.cf and what its results say."""

    kind: str                       # hbvip.cluster.health.ProbeKind values
    name: str
    groups: list[str]
    healthy: bool                   # the verdict after fall/rise (monitors: not banned)
    last: bool | None               # the last result; None before the first
    streak: int                     # results in a row equal to `last`
    detail: str
    restarts: int                   # monitors: local restarts done since the last ban/cleanup
    banned_for_s: float | None      # monitors: seconds of ban left (-1 = until `hbvip cleanup`)


class PingNodeStatusView(TypedDict):
    address: str
    up: bool
    last_answer_s: float | None


class PingStatusView(TypedDict):
    reachable: bool
    deadping_s: float
    nodes: list[PingNodeStatusView]


class PathStatusView(TypedDict):
    """One heartbeat path (a media line's interface) to the peer: Heartbeat's `hblinkstatus`."""

    peer: str
    interface: str
    up: bool
    last_heard_s: float | None
    datagrams: int                  # genuine copies that came this way, duplicates of other paths included
    media: list[str]                # its media lines to the peer: "ucast eth0 10.99.0.2", "mcast6 eth0 [ff12::1]:694"


class StatusView(TypedDict):
    node: str
    version: str
    status: str                     # the `st` we send: "up" before the peer was met, then "active"
    phase: str                      # hbvip.cluster.Phase values
    stable: bool
    hold: str
    generation: int
    uptime_s: float
    config_digest: str
    auto_failback: str
    timers: TimersView
    peer: PeerStatusView
    groups: list[GroupStatusView]
    holding_nothing: str | None
    ping: PingStatusView | None
    paths: list[PathStatusView]
    health: list[ProbeStatusView] | None
    last_takeover: dict[str, float] | None
    counters: dict[str, Any]        # packets_*, retransmitted, dropped{reason: n}, runner and transport_*


class VipView(TypedDict):
    """hbvip.config.VipSpec's fields."""

    address: str
    prefix: int | None
    interface: str | None
    broadcast: str | None


class ProblemView(TypedDict):
    """hbvip.config.Problem's fields."""

    path: str
    line: int | None
    message: str
    fix: str
    severity: str


class ResourceView(TypedDict):
    name: str
    args: list[str]
    spec: str
    vip: VipView | None


class HaresourcesGroupView(TypedDict):
    key: str
    home_node: str
    line: int
    end_line: int
    resources: list[ResourceView]


class HaresourcesView(TypedDict):
    path: str
    groups: list[HaresourcesGroupView]
    problems: list[ProblemView]


def haresources_view(path: str, groups: Sequence[ResourceGroup], problems: Sequence[Problem]) -> HaresourcesView:
    return {"path": path, "groups": [{
        "key": g.key, "home_node": g.home_node, "line": g.line, "end_line": g.end_line,
        "resources": [{"name": r.name, "args": list(r.args), "spec": r.spec,
                       "vip": VipView(**asdict(r.vip)) if r.vip else None} for r in g.resources],
    } for g in groups], "problems": [ProblemView(**asdict(p)) for p in problems]}


class CheckView(TypedDict):
    """hbvip.config.health.Check's fields (times in seconds)."""

    name: str
    command: str
    line: int
    interval: float
    timeout: float
    fall: int
    rise: int
    group: str | None


class ExtensionsView(TypedDict):
    path: str
    exists: bool
    checks: list[CheckView]
    monitors: list[dict[str, Any]]
    track_interfaces: list[dict[str, Any]]
    problems: list[ProblemView]


def extensions_view(path: str, exists: bool, ext: Extensions, problems: Sequence[Problem]) -> ExtensionsView:
    return {"path": path, "exists": exists,
            "checks": [CheckView(**asdict(c)) for c in ext.checks],
            "monitors": [asdict(m) for m in ext.monitors],
            "track_interfaces": [asdict(t) for t in ext.track_interfaces],
            "problems": [ProblemView(**asdict(p)) for p in problems]}
