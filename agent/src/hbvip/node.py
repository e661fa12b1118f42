"""One node of a pair, running: the turn loop that feeds the cluster machines their events and carries
out the actions they return.

Every decision is made in `hbvip.cluster` (membership, failover, ping nodes, death deferral, groups,
reload plan); this class routes between them and the parts with side effects (`Link` for the wire,
`GroupWork` for resources, `PingWatch` for probes). It reads the time only from its `Clock`.
Signal handlers and the control socket only record a request; a turn acts on it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .clock import Clock
from .cluster import (
    Acquire, Action, Announce, Command, CommandKind, Event, Exit, Failover, Hold, Incoming, Log, Membership, PeerDead,
    Release, Reply, ResourcesDone, Retransmit, Send, Tick,
)
from .cluster.deferral import DeathDeferral
from .cluster.grace import grace_fields
from .cluster.paths import PathChange, PathWatch, media_interfaces
from .cluster.pingnodes import PingNodes
from .config import Config
from .dirs import Paths
from .droplog import DropLogLimiter
from .link import DIGEST_FIELD, MAX_DATAGRAM, Link, status_body
from .log import EventLog
from .net.quiet import ROUTINE_TYPES
from .resources.groups import GroupWork
from .resources.runner import ResourceRunner, runner_for
from .sdnotify import sd_notify
from .turns import TaskSet, Wake
from .wire import Signer, WireError, decode

if TYPE_CHECKING:
    from .cluster.reload import ReloadPlan
    from .healthwatch import HealthWatch
    from .views import StatusView

# What only some configurations or rare moments need (health checks, ping nodes, a reload, a status
# request, a dead peer's diagnosis) is imported when it is needed: start-up imports what the first
# turns use, and an idle agent does not keep the rest resident.
# pylint: disable=import-outside-toplevel

#: How long the standby protocol may wait for the peer at each step.
HANDSHAKE_TIMEOUT = 30.0
#: Events without fields are immutable: one instance serves every loop turn.
_TICK = Tick()


def read_datagram(data: bytes, signer: Signer) -> tuple[Incoming, int] | str:
    """A datagram as the membership machine reads it, with the length of its sender's stable start
    (`hbvip.wire.Message.stable_len`), or the reason it is dropped."""
    try:
        msg = decode(data, signer, max_size=MAX_DATAGRAM)
    except WireError as exc:
        return exc.reason
    except Exception:   # the codec promises WireError only; a bug must not kill the daemon
        return "malformed"
    if msg.type is None or msg.src is None:
        return "malformed"
    return Incoming(msg.type, msg.src.lower(), msg.hg, msg.seq, msg.texts, msg.get_bytes("srcuuid"), msg.dest), \
        msg.stable_len


def log_paths(log: EventLog, changes: list[PathChange]) -> None:
    """Heartbeat's words for a path: `Link server2:eth1 dead.`; a warning, the peer may live on."""
    for c in changes:
        fields = {"node": c.peer, "interface": c.interface, "other_paths_up": c.others_up}
        word = "up" if c.up else "dead"
        log("info" if c.up else "warning", f"path.{word}", f"Link {c.peer}:{c.interface} {word}.", fields)


class Node:
    """The machines of one node and the loop around them. `loop()` runs until the machine says Exit."""

    def __init__(self, config: Config, paths: Paths, *, log: EventLog, link: Link, clock: Clock,
                 started: float, runner: ResourceRunner | None = None, tasks: TaskSet | None = None) -> None:
        self.config = config
        self.paths = paths
        self.log = log
        self.link = link
        self.clock = clock
        self.started = started
        self.peer = config.peers[0]
        self.wake = Wake(self._turn)
        self.tasks = tasks or TaskSet()
        self.stopping = asyncio.Event()
        self.restarting = False            # restarting in place: nothing is read, decided or sent any more
        self._crashed: BaseException | None = None
        self.requests: dict[int, asyncio.Future[tuple[bool, str]]] = {}
        self._next_request = 1
        self._signals: list[str] = []
        self.next_status = 0.0
        self.drop_log = DropLogLimiter()
        self.peer_digest: str | None = None
        self.diagnosis: str | None = None
        self.groups = GroupWork(runner or runner_for(config, paths.init_dir, log), config=lambda: self.config,
                                log=log, clock=clock, tasks=self.tasks, done=self._resources_done,
                                idle_hold=self._idle_hold)
        now = clock.monotonic()
        t = config.hacf.timers
        self.membership = Membership(config.node_name, self.peer, deadtime=t.deadtime, warntime=t.warntime,
                                     initdead=t.initdead, now=now, nodes=config.hacf.nodes)
        self.failover = Failover(me=config.node_name, peer=self.peer, auto_failback=config.hacf.auto_failback,
                                 settle_timeout=max(t.deadtime, 2 * t.keepalive),
                                 handshake_timeout=HANDSHAKE_TIMEOUT, now=now, ping=bool(config.hacf.ping),
                                 heal_grace=2 * t.keepalive, health=config.ext.has_health)
        self.ping_nodes = PingNodes(config.hacf.ping, deadping=t.deadping, now=now) if config.hacf.ping else None
        self.deferral = DeathDeferral(self.ping_nodes)
        self.path_watch = PathWatch(self.peer, media_interfaces(config.hacf.media), t.deadtime)
        self.health: HealthWatch | None = None
        self._reload_lock = asyncio.Lock()

    def start_ping_watch(self) -> None:
        if self.ping_nodes is not None:
            from .pingwatch import PingWatch
            watch = PingWatch(self.ping_nodes, keepalive=lambda: self.config.hacf.timers.keepalive,
                              clock=self.clock, log=self.log, apply=self.apply, feed=self._feed_and_wake,
                              after_round=self._release_deferred_death)
            self.tasks.spawn(watch.run())

    def start_health_watch(self) -> None:
        """Checks, monitors and tracked links of hbvip.cf (nothing when it has none)."""
        if self.config.ext.has_health:
            from .healthwatch import HealthWatch
            self.health = HealthWatch(config=lambda: self.config, runner=self.groups.runner, clock=self.clock,
                                      log=self.log, tasks=self.tasks, held=self._held_keys, feed=self._feed_and_wake)
            self.health.start()

    async def reload_health(self, plan: ReloadPlan) -> None:
        """A reload's health part (`plan.probes`, `plan.health`): the watch starts, follows the new lines
        or stops; the heartbeats carry eligibility while there is health to report."""
        self.failover.health = plan.health
        if self.health is not None and not plan.health:
            self.health.stop()
            self.health = None
        elif self.health is None:
            self.start_health_watch()       # the new config's lines; none: nothing starts
        else:
            await self.health.reconfigure(plan.probes.renew)

    def _held_keys(self) -> list[str]:
        return [g.key for g in self.groups.groups(self.failover.held)] if self.failover.busy is None else []

    def signal(self, name: str) -> None:
        """A signal handler's request ("term" or "hup"), acted on in the next turn."""
        self._signals.append(name)
        self.wake.set()

    # ---- the loop ---------------------------------------------------------------------------------
    async def loop(self) -> None:
        """Turns run as timer callbacks (see `Wake`); this task only waits for the end."""
        self.wake.set()
        try:
            await self.stopping.wait()
        finally:
            self.wake.cancel()
        if self._crashed is not None:
            raise self._crashed

    def _turn(self) -> float | None:
        """One turn: signals, the keepalive, membership and failover timers. Returns when the next turn
        is due (the earliest deadline, so a dead peer is noticed at last_heard + deadtime, not on the
        next keepalive), or None once the agent stops."""
        if self.stopping.is_set() or self.restarting:
            return None
        try:
            return self._turn_once()
        except BaseException as exc:   # a turn is a bare callback: without this the agent would go silent
            self._crashed = exc
            self.stopping.set()
            return None

    def _turn_once(self) -> float | None:
        keepalive = self.config.hacf.timers.keepalive   # read each turn: a reload may change it
        if self.link.transport is not None:
            self.link.transport.drain_quiet()     # the peer's heartbeats since the last turn, first
        now = self.clock.monotonic()
        while self._signals:
            name = self._signals.pop(0)
            if name == "term":
                self.log("info", "shutdown.request", "Heartbeat shutdown in progress.")
                self.feed(Command(CommandKind.SHUTDOWN))
            else:
                self.tasks.spawn(self.reload())
        if now >= self.next_status:
            self.send_status(self.failover.status_word)
            # Stay on the keepalive grid; skip beats we missed rather than bursting them.
            self.next_status += keepalive * max(1, int((now - self.next_status) / keepalive) + 1)
        events, actions = self.membership.check(now)
        self.apply(actions)
        for e in events:
            if isinstance(e, PeerDead) and (deferred := self.deferral.defer(
                    e, peer=self.peer, last_heard=self.membership.peer.last_heard, keepalive=keepalive)):
                self.apply([deferred])
                self.tasks.spawn(self._diagnose_silence())
                continue
            self.feed(e)      # first: the takeover's task is then scheduled before the diagnosis's ping
            if isinstance(e, PeerDead) and not e.graceful:
                self.tasks.spawn(self._diagnose_silence())
        log_paths(self.log, self.path_watch.check(now, self.membership.peer.grace))
        self.feed(_TICK)
        if self.stopping.is_set():
            return None
        return min(self.next_deadline(), self.clock.monotonic() + 60.0)

    def next_deadline(self) -> float:
        return min(self.next_status, self.membership.next_deadline(), self.failover.next_deadline(),
                   self.path_watch.next_deadline(self.membership.peer.grace))

    # ---- input ------------------------------------------------------------------------------------
    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.restarting:
            return
        read = read_datagram(data, self.link.signer)
        if isinstance(read, str):
            self.membership.drop(read)
            if read in ("bad_auth", "unknown_key"):
                self.log("debug", "packet.dropped", None, {"reason": read, "from": addr[0]})
            return
        incoming, stable = read
        transport = self.link.transport
        arrived = transport and transport.arrival_time     # None: it arrived now (hbvip.net.quiet)
        now = self.clock.monotonic() if arrived is None else arrived
        reason, events, actions = self.membership.receive(incoming, now, sent_seq=self.link.seq)
        from_peer = incoming.src == self.peer.lower()
        if reason in (None, "duplicate") and from_peer and transport is not None:
            log_paths(self.log, self.path_watch.heard(transport.arrival_interface, now))
        if reason is not None:
            self.apply(self.drop_log.filter(reason, actions, now))
            return
        self.link.received += 1
        self.diagnosis = None
        self.apply(actions)
        for e in events:
            self.feed(e)
        if incoming.type == "status":
            self.peer_digest = incoming.fields.get(DIGEST_FIELD)
            self._beat_along(now)
        if from_peer and stable and arrived is None and transport and incoming.type in ROUTINE_TYPES:
            transport.steer(incoming.type, data[:stable])   # what it says again waits for our turn (net.quiet)
        if self.wake.armed:   # outside a turn (which computes its own): the timer moves to the earliest deadline
            self.wake.reschedule(self.next_deadline())

    def _beat_along(self, now: float) -> None:
        """Send our heartbeat with the peer's (read at once) when ours is due within half a keepalive anyway:
        where its routine heartbeats cannot wait for our turn (hbvip.net.quiet: broadcast or multicast
        media), the nodes then beat in step, and the one that replies wakes once per keepalive, not twice.
        Our beats stay ½-1 keepalive apart: never late for the peer, never over twice the rate."""
        keepalive = self.config.hacf.timers.keepalive
        if self.wake.armed and not self.stopping.is_set() and self.next_status - now <= keepalive / 2:
            self.send_status(self.failover.status_word)
            self.next_status = now + keepalive

    def feed(self, event: Event) -> None:
        if not self.restarting:
            self.apply(self.failover.handle(event, self.clock.monotonic()))

    def _feed_and_wake(self, event: Event) -> None:
        self.feed(event)
        self.wake.set()

    def _resources_done(self, done: ResourcesDone) -> None:
        self._feed_and_wake(done)
        if self.health is not None:
            self.health.poke()          # a group taken here is monitored from now on

    def _idle_hold(self) -> Hold | None:
        return None if self.failover.busy is not None else self.failover.held

    def _release_deferred_death(self) -> None:
        event = self.deferral.due(self.membership.peer.status)
        if event is not None:
            self._feed_and_wake(event)

    # ---- output -----------------------------------------------------------------------------------
    def apply(self, actions: list[Action]) -> None:
        if self.restarting:
            return        # restarting in place: the state as it is now goes to the successor, untouched
        for a in actions:
            if isinstance(a, Send):
                self.link.send(a.type, a.body)
            elif isinstance(a, Log):
                self.log(a.level, a.event, a.classic, a.fields)
            elif isinstance(a, Acquire):
                self.groups.acquire(a.hold, a.reason)
            elif isinstance(a, Release):
                self.groups.release(a.hold, a.reason)
            elif isinstance(a, Announce):
                self.groups.announce(a.hold)
            elif isinstance(a, Retransmit):
                self.link.retransmit(a.firstseq, a.lastseq)
            elif isinstance(a, Reply):
                fut = self.requests.pop(a.request_id, None)
                if fut is not None and not fut.done():
                    fut.set_result((a.ok, a.message))
            elif isinstance(a, Exit):
                sd_notify("STOPPING=1")
                self.stopping.set()
                self.wake.set()

    async def _diagnose_silence(self) -> None:
        """The peer went silent: if it still answers ping, say that heartbeats are lost, not the peer."""
        from .diagnosis import explain_silence
        try:
            why = await explain_silence(self.link.peer_addresses, self.config.hacf.udpport)
        except PermissionError:
            self.log("debug", "diagnosis.no_icmp", None, {"error": "CAP_NET_RAW missing"})
            return
        if why is not None and self.membership.peer.status == "dead":
            self.diagnosis = why
            self.log("warning", "peer.alive_no_heartbeats", why, {"node": self.peer})

    def send_status(self, st: str, *, restarting: bool = False) -> None:
        extra = grace_fields(self.config.hacf.timers.deadtime, restarting=restarting)
        self.link.send("status", status_body(self.config, st, extra))

    # ---- what the control socket asks -------------------------------------------------------------
    async def request(self, kind: str, which: str, timeout: float) -> tuple[bool, str]:
        rid = self._next_request
        self._next_request += 1
        fut: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
        self.requests[rid] = fut
        self.feed(Command(CommandKind(kind), which, rid))
        self.wake.set()
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self.requests.pop(rid, None)
            return False, f"timed out after {timeout:g} s; see `hbvip status`"

    def restart_in_place(self, check: bool) -> tuple[bool, str]:
        """`hbvip restart-in-place`: stop here without releasing anything; the daemon then writes the
        record and execs the new agent (see cluster/inplace.py). `check`: only say whether it would."""
        why = self.failover.restart_refusal(self.membership.peer.grants_grace)
        if why is not None:
            return False, f"refused: {why}"
        held = self.failover.held.word
        if check:
            return True, f"would restart in place, keeping {held} resources"
        for _unused in range(2):          # the peer's grace hangs on this word: one lost datagram must not cost it
            self.send_status(self.failover.status_word, restarting=True)
        self.restarting = True
        self.log("info", "restart.in_place", f"Restarting in place: keeping {held} resources",
                 {"hold": held, "peer_grants_ms": round(self.membership.peer.grants_grace * 1000)})
        asyncio.get_running_loop().call_soon(self.stopping.set)   # after the control socket's answer left
        return True, f"restarting in place, keeping {held} resources"

    async def reload(self) -> tuple[bool, str]:
        """SIGHUP or `hbvip reload`: load the files again; a broken config is refused, the running one kept.
        One reload at a time: a second waits for the first."""
        from .reloader import reload_config
        async with self._reload_lock:
            return await reload_config(self)

    def cleanup(self, group: str) -> tuple[bool, str]:
        """`hbvip cleanup GROUP`: this node may hold the group again after its monitor failures."""
        if group not in (g.key for g in self.config.groups):
            return False, f"no group {group!r} in haresources"
        if self.health is None or not self.health.cleanup(group):
            return True, f"{group}: no monitor failures to clear"
        self.log("info", "health.cleanup", f"{group}: monitor failures cleared by operator", {"group": group})
        return True, f"{group}: monitor failures cleared; eligible again"

    def status(self) -> StatusView:
        from .status import status_view
        return status_view(config=self.config, now=self.clock.monotonic(), started=self.started, peer=self.peer,
                           membership=self.membership, failover=self.failover, link=self.link, groups=self.groups,
                           ping_nodes=self.ping_nodes, peer_digest=self.peer_digest, diagnosis=self.diagnosis,
                           paths=self.path_watch,
                           health=self.health.health if self.health is not None else None)
