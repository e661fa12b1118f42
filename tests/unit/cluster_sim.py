"""A two-node simulation of the pure cluster machines under a fake clock (unit-test helper).

Messages a node `Send`s reach the peer after `latency` (unless the link is cut); `Acquire`/`Release`
finish after `work` seconds and append to a shared call log, like the seed's failback.sh logger does.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from hbvip.cluster import (
    Acquire, Announce, Command, Connectivity, Eligibility, Exit, Failover, Hold, Incoming, Log, Membership, Release, Reply,
    ResourcesDone, Retransmit, Send, Tick,
)
from hbvip.cluster.grace import grace_fields
from hbvip.cluster.inplace import RestartRecord, restart_record, resumed_peer

KEEPALIVE, WARNTIME, DEADTIME, INITDEAD = 1.0, 3.0, 5.0, 10.0


@dataclass
class SimNode:
    name: str
    peer: str
    home_of_vip: bool
    auto_failback: str
    now: float
    hg: int = 100
    alive: bool = True
    seq: int = 0
    sent: list[tuple[float, str, dict]] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    exited: bool = False
    ping: bool = False            # ha.cf has `ping` lines: the machine waits for Connectivity
    reaches_ping: bool = True     # what this node's ping probes would say (the sim's network)
    health: bool = False          # hbvip.cf has health checks: the machine reports its eligibility
    grants_grace: bool = True     # its heartbeats carry hbvip's grace field (False: like Heartbeat 3.0.6)
    kept: RestartRecord | None = None   # restarting in place: silent, but its VIPs stay

    def __post_init__(self) -> None:
        self.boot(self.now)

    def boot(self, now: float, record: RestartRecord | None = None) -> list:
        """A start of the agent: afresh, or continuing `record` (a restart in place); returns its actions."""
        self.hg = record.generation if record else self.hg + 1
        self.seq = record.seq if record else 0
        self.alive = True
        self.exited = False
        self.kept = None
        self.membership = Membership(self.name, self.peer, deadtime=DEADTIME, warntime=WARNTIME,
                                     initdead=INITDEAD, now=now)
        self.failover = Failover(me=self.name, peer=self.peer, auto_failback=self.auto_failback,
                                 settle_timeout=DEADTIME, handshake_timeout=10.0, now=now, ping=self.ping,
                                 heal_grace=2 * KEEPALIVE, health=self.health)
        self.next_status = now
        if record is None:
            return []
        self.membership.peer = resumed_peer(record, now)
        return self.failover.resume(record, now)

    @property
    def holds_vip(self) -> bool:
        cat = Hold.LOCAL if self.home_of_vip else Hold.FOREIGN
        if self.kept is not None:
            return bool(self.kept.held & cat)
        return bool(self.failover.held & cat) and (self.failover.busy is None or not self.failover.busy[1] & cat)


class Sim:
    def __init__(self, auto_failback: str = "on", latency: float = 0.001, work: float = 0.05,
                 start2: float = 0.0, ping: bool = False, health: bool = False) -> None:
        self.t = 0.0
        self.latency = latency
        self.work = work
        self.queue: list[tuple[float, int, str, object]] = []
        self.counter = itertools.count()
        self.calls: list[tuple[float, str, str]] = []     # (time, host, "start"/"stop"/"status")
        self.failing_start: set[str] = set()                # nodes whose VIP group fails to start
        self.releases: list[tuple[str, str]] = []           # (node, reason) of each Release
        self.link = {("server1", "server2"): True, ("server2", "server1"): True}
        self.nodes = {
            "server1": SimNode("server1", "server2", True, auto_failback, 0.0, ping=ping, health=health),
            "server2": SimNode("server2", "server1", False, auto_failback, 0.0, hg=200, ping=ping, health=health),
        }
        for name in self.nodes:
            self._probe_ping(name, 0.0)
        if start2:
            self.nodes["server2"].alive = False
            self.at(start2, "boot", "server2")

    # ---- scheduling ----
    def at(self, t: float, kind: str, node: str, payload: object = None) -> None:
        heapq.heappush(self.queue, (t, next(self.counter), kind, (node, payload)))

    def run_until(self, t_end: float) -> None:
        while True:
            cand = [n.next_status for n in self.nodes.values() if n.alive and not n.exited]
            cand += [self._deadline(n) for n in self.nodes.values() if n.alive and not n.exited]
            if self.queue:
                cand.append(self.queue[0][0])
            nxt = min(cand + [t_end])
            if nxt >= t_end:
                self.t = t_end
                return
            self.t = max(self.t, nxt)
            for n in self.nodes.values():
                if n.alive and not n.exited and n.next_status <= self.t:
                    self._send(n, "status", self._status_body(n))
                    n.next_status = self.t + KEEPALIVE
            for n in self.nodes.values():
                if n.alive and not n.exited and self._deadline(n) <= self.t:
                    self._tick(n)
            while self.queue and self.queue[0][0] <= self.t:
                _unused, _unused, kind, (node, payload) = heapq.heappop(self.queue)
                self._event(kind, self.nodes[node], payload)

    @staticmethod
    def _status_body(n: SimNode, restarting: bool = False) -> tuple:
        body = (("st", n.failover.status_word), ("dt", f"{int(DEADTIME * 1000):x}"), ("protocol", "1"))
        return body + grace_fields(DEADTIME, restarting=restarting) if n.grants_grace else body

    def _deadline(self, n: SimNode) -> float:
        return min(n.membership.next_deadline(), n.failover.next_deadline())

    # ---- node plumbing ----
    def _tick(self, n: SimNode) -> None:
        events, actions = n.membership.check(self.t)
        self._apply(n, actions)
        for e in events + [Tick()]:
            self._apply(n, n.failover.handle(e, self.t))

    def _send(self, n: SimNode, mtype: str, body: tuple) -> None:
        seq = None
        if not mtype.startswith("NS_"):
            n.seq += 1
            seq = n.seq
        fields = {k: v for k, v in body if isinstance(v, str)}
        n.sent.append((self.t, mtype, fields))
        if self.link[(n.name, n.peer)]:
            self.at(self.t + self.latency, "deliver", n.peer, Incoming(mtype, n.name, n.hg, seq, fields))

    def _apply(self, n: SimNode, actions: list) -> None:
        for a in actions:
            if isinstance(a, Send):
                self._send(n, a.type, a.body)
            elif isinstance(a, Acquire):
                if (a.hold & Hold.LOCAL and n.home_of_vip) or (a.hold & Hold.FOREIGN and not n.home_of_vip):
                    self.calls.append((self.t, n.name, "status"))
                    self.calls.append((self.t, n.name, "start"))
                vip = (a.hold & Hold.LOCAL and n.home_of_vip) or (a.hold & Hold.FOREIGN and not n.home_of_vip)
                ok = not (vip and n.name in self.failing_start)
                self.at(self.t + self.work, "done", n.name, ResourcesDone("acquire", a.hold, ok, "" if ok else "rc=1"))
            elif isinstance(a, Release):
                self.releases.append((n.name, a.reason))
                if (a.hold & Hold.LOCAL and n.home_of_vip) or (a.hold & Hold.FOREIGN and not n.home_of_vip):
                    self.calls.append((self.t, n.name, "stop"))
                self.at(self.t + self.work, "done", n.name, ResourcesDone("release", a.hold, True))
            elif isinstance(a, Log):
                n.logs.append(a)
            elif isinstance(a, Reply):
                n.replies.append(a)
            elif isinstance(a, Exit):
                n.exited = True
            elif isinstance(a, (Announce, Retransmit)):
                pass

    def _event(self, kind: str, n: SimNode, payload: object) -> None:
        if kind == "boot":
            self._apply(n, n.boot(self.t, payload))      # type: ignore[arg-type]
            self._probe_ping(n.name, self.t)
            return
        if not n.alive or n.exited:
            return
        if kind == "deliver":
            _unused, events, actions = n.membership.receive(payload, self.t)
            self._apply(n, actions)
            for e in events:
                self._apply(n, n.failover.handle(e, self.t))
        elif kind == "done":
            self._apply(n, n.failover.handle(payload, self.t))
        elif kind in ("command", "reach"):
            self._apply(n, n.failover.handle(payload, self.t))

    def _probe_ping(self, name: str, t: float) -> None:
        """The daemon's first ping round answers within a few ms of start (DEADPING later for a loss)."""
        n = self.nodes[name]
        if n.ping and n.reaches_ping:
            self.at(t + 0.005, "reach", name, Connectivity(True))

    # ---- scenario helpers ----
    def power_loss(self, name: str, t: float) -> None:
        self.run_until(t)
        n = self.nodes[name]
        n.alive = False
        self.queue = [q for q in self.queue if q[3][0] != name]
        heapq.heapify(self.queue)

    def restart_in_place(self, name: str, t: float, downtime: float | None) -> str | None:
        """At `t`, `name` restarts in place as the daemon does (two hinted heartbeats, the record, silence)
        and its successor starts `downtime` later (None: never). Returns the refusal, if any."""
        self.run_until(t)
        n = self.nodes[name]
        why = n.failover.restart_refusal(n.membership.peer.grants_grace)
        if why is not None:
            return why
        for _unused in range(2):
            self._send(n, "status", self._status_body(n, restarting=True))
        n.kept = restart_record(n.failover, n.membership.peer, generation=n.hg, seq=n.seq, now=t, groups=(),
                                version="test")
        n.exited = True
        if downtime is not None:
            self.at(t + downtime, "boot", name, n.kept)
        return None

    def ping_reach(self, name: str, t: float, reachable: bool) -> None:
        """From `t` on, `name` does (not) reach its ping node; the daemon would report it like this."""
        self.nodes[name].reaches_ping = reachable
        self.at(t, "reach", name, Connectivity(reachable, () if reachable else ("10.99.0.254",)))

    def eligible(self, name: str, t: float, ok: bool, reason: str = "check failed: web") -> None:
        """From `t` on, `name`'s health checks say it may (not) hold the VIP's group (the one group)."""
        n = self.nodes[name]
        cat = Hold.LOCAL if n.home_of_vip else Hold.FOREIGN
        self.at(t, "reach", name, Eligibility(Hold.ALL if ok else Hold.ALL & ~cat, "" if ok else reason))

    def partition(self, t: float, heal: bool = False) -> None:
        """Cut (or restore) the heartbeat link both ways at `t`."""
        self.run_until(t)
        for key in self.link:
            self.link[key] = heal

    def command(self, name: str, t: float, cmd: Command) -> None:
        self.at(t, "command", name, cmd)

    def vip_holders(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.alive and (not n.exited or n.kept) and n.holds_vip]

    def first_time_holder(self, name: str, after: float, step: float = 0.01, until: float = 60.0) -> float | None:
        while self.t < until:
            if name in self.vip_holders() and self.t >= after:
                return self.t
            self.run_until(self.t + step)
        return None

    def classic(self, name: str) -> list[str]:
        return [log.classic for log in self.nodes[name].logs if log.classic]
