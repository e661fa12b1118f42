"""Probing Heartbeat's `ping` nodes: one ICMP echo to each per keepalive.

The verdicts are the pure `PingNodes`' (`hbvip.cluster.pingnodes`); this loop only sends the echoes,
reports the answers, and hands the resulting events and actions to the node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .clock import Clock
from .cluster import Action, Event
from .cluster.pingnodes import PingNodes
from .log import EventLog
from .net.icmp import ping

Probe = Callable[..., Awaitable[bool]]


class PingWatch:
    """The probe loop of one node. `after_round` runs after each round (the deferred death waits on it)."""

    def __init__(self, nodes: PingNodes, *, keepalive: Callable[[], float], clock: Clock, log: EventLog,
                 apply: Callable[[list[Action]], None], feed: Callable[[Event], None],
                 after_round: Callable[[], None], probe: Probe = ping) -> None:
        self.nodes = nodes
        self._keepalive = keepalive        # read each round: a reload may change it
        self.clock = clock
        self.log = log
        self._apply = apply
        self._feed = feed
        self._after_round = after_round
        self._probe = probe

    async def run(self) -> None:
        """The failover machine hears only when this node starts or stops reaching any node (`Connectivity`)."""
        nodes = self.nodes
        warned = False
        while True:
            keepalive = self._keepalive()
            began = self.clock.monotonic()
            try:
                answers = await asyncio.gather(*(self._probe(n, timeout=0.9 * keepalive, tries=1)
                                                 for n in nodes.nodes))
            except PermissionError:
                answers = [False] * len(nodes.nodes)
                if not warned:
                    warned = True
                    self.log("error", "ping.no_icmp", "ping nodes cannot be probed: ICMP echo needs CAP_NET_RAW", {})
            now = self.clock.monotonic()
            for node, ok in zip(nodes.nodes, answers):
                if ok:
                    nodes.answered(node, now)
            events, actions = nodes.check(now)
            self._apply(actions)
            for e in events:
                self._feed(e)
            self._after_round()
            await asyncio.sleep(max(0.0, began + keepalive - self.clock.monotonic()))
