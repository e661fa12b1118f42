"""Heartbeat's `ping` nodes: which of them answered lately, and whether this node reaches any.

Pure like the rest of this package: the daemon probes (ICMP echo, once per keepalive) and reports each
answer with `answered(node, now)`; `check(now)` turns the answers into per-node up/dead log lines and the
one event the failover machine needs, `Connectivity`, when reachability as a whole changes. A node is
up while its last answer is younger than `deadping`. Ping nodes are not cluster members here: they never
appear in the node list on the wire, so a Heartbeat peer is not confused by them.
"""

from __future__ import annotations

from ..records import dataclass
from .events import Action, Connectivity, Log


@dataclass(frozen=True)
class PingNodeView:
    """One ping node as `hbvip status` shows it."""

    address: str
    up: bool
    last_answer_s: float | None     # seconds since its last answer; None = never answered


class PingNodes:
    """Answers per ping node and the reachability last reported to the failover machine."""

    def __init__(self, nodes: tuple[str, ...], *, deadping: float, now: float) -> None:
        self.nodes = nodes
        self.deadping = deadping
        self.started = now
        self.last: dict[str, float | None] = {n: None for n in nodes}
        self._up: dict[str, bool | None] = {n: None for n in nodes}   # None: not decided yet
        self.reachable: bool | None = None       # None until the first answer or the first deadping

    def answered(self, node: str, now: float) -> None:
        if node in self.last:
            self.last[node] = now

    def is_up(self, node: str, now: float) -> bool:
        last = self.last.get(node)
        return last is not None and now - last < self.deadping

    def answered_since(self, since: float) -> bool:
        """Some ping node answered at or after `since`: proof of connectivity after that moment."""
        return any(last is not None and last >= since for last in self.last.values())

    def unreachable(self, now: float) -> tuple[str, ...]:
        return tuple(n for n in self.nodes if not self.is_up(n, now))

    def check(self, now: float) -> tuple[list[Connectivity], list[Action]]:
        """Per-node transitions as Heartbeat logs them (`Link ip:ip up.`/`dead.`), and a `Connectivity`
        event whenever "reaches at least one ping node" changes. Before the first answer nothing is
        decided until deadping has passed, so a slow first echo does not count as a loss."""
        actions: list[Action] = []
        undecided = now - self.started < self.deadping
        for node in self.nodes:
            up = self.is_up(node, now)
            if up == self._up[node] or (not up and undecided):
                continue
            self._up[node] = up
            actions.append(Log("info" if up else "warning", "ping.node_up" if up else "ping.node_dead",
                               f"Link {node}:{node} {'up' if up else 'dead'}.", {"node": node}))
        reachable = any(self._up[n] for n in self.nodes)
        if reachable == self.reachable or (not reachable and undecided):
            return [], actions
        self.reachable = reachable
        return [Connectivity(reachable, () if reachable else self.nodes)], actions

    def view(self, now: float) -> list[PingNodeView]:
        return [PingNodeView(n, self.is_up(n, now),
                             round(now - last, 3) if (last := self.last[n]) is not None else None)
                for n in self.nodes]
