"""The composition root: wires config, wire codec, transport, membership, failover and resources.

Everything with a side effect lives here or below it (sockets, scripts, netlink, files, signals); the
decisions live in `hbvip.cluster`, which this loop feeds with events and whose actions it carries out.
Signal handlers only record a request; the loop acts on it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .cluster import (
    Acquire, Action, Announce, Command, Event, Exit, Failover, Hold, Incoming, Log, Membership, PeerDead,
    Release, Reply, ResourcesDone, Retransmit, Send, Tick,
)
from .cluster.pingnodes import PingNodes
from .config import Config, ConfigError, ResourceGroup, load_config
from .diagnosis import DIGEST_FIELD, digest_state, explain_silence
from .droplog import DropLogLimiter
from .log import EventLog
from .metrics import GroupHistory, MetricsExporter
from .net.icmp import ping
from .net.transport import Transport, TransportError
from .resources.runner import ResourceRunner
from .wire import Signer, WireError, build, decode, encode
from .wire.identity import increment_generation, load_or_create_uuid, record_uuid_host, uuid_host

#: Own datagrams kept for answering NS_rexmit byte-identically.
SEND_HISTORY = 200
#: How long the standby protocol may wait for the peer at each step.
HANDSHAKE_TIMEOUT = 30.0
#: A periodic GARP refresh sends one request and one reply (stacks differ in which one they learn from).
REFRESH_FRAMES = 2
#: Larger datagrams are dropped as `oversized` before parsing: a two-node haresources pair never sends
#: more than a few KB, so this only bounds the work a hostile sender can make us do per datagram.
MAX_DATAGRAM = 32768
#: Events without fields are immutable: one instance serves every loop turn.
_TICK = Tick()


class _Wake:
    """Runs the agent's turn as a plain timer callback: at the time the last turn asked for, or as soon
    as the loop is free after `set()` (coalesced). A keepalive turn is then one timer handle, with no
    task, future or timeout object made per turn: an idle agent's CPU cost is mostly its wake-ups."""

    def __init__(self, turn: Callable[[], float | None]) -> None:
        self._turn = turn
        self._timer: asyncio.TimerHandle | None = None
        self._soon: asyncio.Handle | None = None
        #: When the next turn runs by itself (monotonic; -inf while none is armed: before the loop
        #: starts and after it ended there is nobody to wake early).
        self.at = float("-inf")

    def set(self) -> None:
        if self._soon is None:
            self._soon = asyncio.get_running_loop().call_soon(self._run)

    def reschedule(self, when: float) -> None:
        """Move the next turn to `when` (a deadline changed outside a turn). Nothing to do while no turn
        is armed or one is about to run anyway: that turn computes its own deadline."""
        if self._timer is None or self._soon is not None or when == self.at:
            return
        self._timer.cancel()
        self.at = when
        self._timer = asyncio.get_running_loop().call_at(when, self._run)

    def cancel(self) -> None:
        for handle in (self._timer, self._soon):
            if handle is not None:
                handle.cancel()
        self._timer = self._soon = None
        self.at = float("-inf")

    def _run(self) -> None:
        self.cancel()
        when = self._turn()
        if when is not None:
            self.at = when
            # The loop's clock is time.monotonic(), so the deadline is used as it is.
            self._timer = asyncio.get_running_loop().call_at(when, self._run)


@dataclass(frozen=True)
class Paths:
    config_dir: Path = Path("/etc/ha.d")
    state_dir: Path = Path("/var/lib/heartbeat")
    run_dir: Path = Path("/run/hbvip")
    init_dir: Path = Path("/etc/init.d")


class Agent:
    """One node of a pair. `run()` returns the process exit code."""

    def __init__(self, config: Config, paths: Paths, *, log_stderr: bool = False) -> None:
        self.config = config
        self.paths = paths
        hacf = config.hacf
        self.log = EventLog(config.node_name, logfile=hacf.logfile, debugfile=hacf.debugfile,
                            logfacility=hacf.logfacility, stderr=log_stderr or not (hacf.logfile or hacf.debugfile),
                            debug=bool(hacf.debug))
        self.peer = config.peers[0]
        self.signer = Signer.from_authkeys(config.authkeys)
        self.uuid = b""
        self.generation = 0
        self.seq = 0
        self.history: OrderedDict[int, bytes] = OrderedDict()
        self.counters: dict[str, int] = {"sent": 0, "received": 0}
        self.started = time.monotonic()
        self.wake = _Wake(self._turn)
        self._crashed: BaseException | None = None
        self.stopping = asyncio.Event()
        self.requests: dict[int, asyncio.Future[tuple[bool, str]]] = {}
        self._next_request = 1
        self._signals: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.transport: Transport | None = None
        self.stale_cleanup: asyncio.Task[None] | None = None
        self.runner = self._make_runner(config)
        self.membership: Membership | None = None
        self.failover: Failover | None = None
        self.next_status = 0.0
        self.status_word = "init"
        self.takeover_started: float | None = None
        self.last_takeover: dict[str, float] = {}
        self.group_history = GroupHistory()
        self.drop_log = DropLogLimiter()
        self.peer_digest: str | None = None
        self.diagnosis: str | None = None
        self.ping_nodes: PingNodes | None = None
        self._deferred_death: tuple[PeerDead, float] | None = None
        self._garp_refresh: asyncio.Task[None] | None = None

    # ---- set-up -----------------------------------------------------------------------------------
    def _make_runner(self, config: Config) -> ResourceRunner:
        return ResourceRunner(config.config_dir, script_timeout=config.ext.script_timeout,
                              garp_count=config.ext.garp_count, garp_interval=config.ext.garp_interval,
                              init_dir=self.paths.init_dir,
                              log=lambda event, fields: self.log("info", event, None, fields))

    def _groups(self, hold: Hold, config: Config | None = None) -> list[ResourceGroup]:
        """The groups of a category, in haresources order (Heartbeat acquires in file order)."""
        config = config or self.config
        me = config.node_name.lower()
        out = []
        for g in config.groups:
            local = g.home_node.lower() == me
            if (local and hold & Hold.LOCAL) or (not local and hold & Hold.FOREIGN):
                out.append(g)
        return out

    async def run(self) -> int:
        cfg = self.config
        t = cfg.hacf.timers
        self.log("info", "start", f"Configuration validated. Starting hbvip {__version__}",
                 {"node": cfg.node_name, "peer": self.peer, "version": __version__})
        self.uuid, created = load_or_create_uuid(self.paths.state_dir)
        made_under = uuid_host(self.paths.state_dir)
        if created:
            self.log("info", "uuid.created", "No uuid found for current node - generating a new uuid.")
            record_uuid_host(self.paths.state_dir, cfg.node_name)
        elif made_under and made_under != cfg.node_name:
            self.log("warning", "uuid.other_host",
                     f"hb_uuid in {self.paths.state_dir} was made under hostname {made_under!r}, this node is "
                     f"{cfg.node_name!r}: the peer may reject it as a replay; delete hb_uuid after a rename",
                     {"made_under": made_under, "node": cfg.node_name})
        elif not made_under:
            record_uuid_host(self.paths.state_dir, cfg.node_name)
        self.generation = increment_generation(self.paths.state_dir)
        self.log("info", "generation", f"Heartbeat generation: {self.generation}", {"hg": self.generation})

        # We hold nothing at start: any copy of a VIP here is stale (e.g. left by kill -9). Removing them
        # overlaps with opening the sockets and meeting the peer; an acquisition waits for it (`_acquire`).
        self.stale_cleanup = asyncio.get_running_loop().create_task(self._cleanup_stale())
        self._tasks.add(self.stale_cleanup)
        self.stale_cleanup.add_done_callback(self._tasks.discard)

        self._make_machines(time.monotonic())
        if cfg.hacf.ping:
            self._spawn(self._watch_ping_nodes())
        self._start_garp_refresh()
        self.transport = self._make_transport(cfg)
        try:
            await self.transport.start()
        except TransportError as exc:   # e.g. no CAP_NET_BIND_SERVICE: say the fix, not a traceback
            self.log("error", "transport.failed", str(exc), {"port": cfg.hacf.udpport})
            print(f"hbvip: {exc}", file=sys.stderr)
            self.log.close()
            return 1
        self.log("info", "transport.up", None, {"port": cfg.hacf.udpport,
                                                "peers": ",".join(self.transport.peer_addresses)})
        from .control import ControlServer
        control = ControlServer(self, self.paths.run_dir)
        await control.start()
        metrics = MetricsExporter(self.status, listen=cfg.ext.metrics_listen, textfile=cfg.ext.metrics_textfile,
                                  on_error=lambda event, fields: self.log("warning", event, None, fields))
        try:
            await metrics.start()
            if metrics.enabled:
                self.log("info", "metrics.up", None, {"listen": _hostport(cfg.ext.metrics_listen),
                                                      "textfile": cfg.ext.metrics_textfile or "-"})
        except OSError as exc:     # metrics are for watching; they never keep the pair from failing over
            self.log("error", "metrics.failed", None, {"listen": _hostport(cfg.ext.metrics_listen),
                                                       "error": exc.strerror})
        self._install_signals()
        self._send_status("init")
        self.status_word = "up"
        self._send_status("up")
        self.log("info", "status.local", "Local status now set to: 'up'")
        self.next_status = time.monotonic() + t.keepalive
        _sd_notify("READY=1\nSTATUS=waiting for peer")
        # Everything allocated so far (imports, pyroute2, the config) lives as long as the process: keep it
        # out of the collector's full passes, which would otherwise walk the whole heap again and again.
        gc.freeze()
        try:
            await self._loop()
        finally:
            await control.stop()
            await metrics.stop()
            self.transport.close()
            for task in list(self._tasks):
                task.cancel()
            self.log("info", "exit", None, {})
            self.log.close()
        return 0

    def _make_machines(self, now: float) -> None:
        cfg = self.config
        t = cfg.hacf.timers
        self.membership = Membership(cfg.node_name, self.peer, deadtime=t.deadtime, warntime=t.warntime,
                                     initdead=t.initdead, now=now, nodes=cfg.hacf.nodes)
        self.failover = Failover(me=cfg.node_name, peer=self.peer, auto_failback=cfg.hacf.auto_failback,
                                 settle_timeout=max(t.deadtime, 2 * t.keepalive),
                                 handshake_timeout=HANDSHAKE_TIMEOUT, now=now, ping=bool(cfg.hacf.ping))
        if cfg.hacf.ping:
            self.ping_nodes = PingNodes(cfg.hacf.ping, deadping=t.deadping, now=now)

    def _make_transport(self, cfg: Config) -> Transport:
        peers = [(m.address, m.interface) for m in cfg.hacf.media if m.kind == "ucast" and m.address]
        bcast = [m.interface for m in cfg.hacf.media if m.kind == "bcast"]
        return Transport(cfg.hacf.udpport, peers, self._on_datagram, broadcast_interfaces=bcast)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, name in ((signal.SIGTERM, "term"), (signal.SIGINT, "term"), (signal.SIGHUP, "hup")):
            loop.add_signal_handler(sig, self._signal, name)

    def _signal(self, name: str) -> None:
        self._signals.append(name)
        self.wake.set()

    # ---- the loop ---------------------------------------------------------------------------------
    async def _loop(self) -> None:
        """Turns run as timer callbacks (see `_Wake`); this task only waits for the end."""
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
        if self.stopping.is_set():
            return None
        try:
            return self._turn_once()
        except BaseException as exc:   # a turn is a bare callback: without this the agent would go silent
            self._crashed = exc
            self.stopping.set()
            return None

    def _turn_once(self) -> float | None:
        assert self.membership and self.failover
        keepalive = self.config.hacf.timers.keepalive   # read each turn: a reload may change it
        now = time.monotonic()
        while self._signals:
            name = self._signals.pop(0)
            if name == "term":
                self.log("info", "shutdown.request", "Heartbeat shutdown in progress.")
                self.feed(Command("shutdown"))
            else:
                self.reload()
        if now >= self.next_status:
            self._send_status(self.failover.status_word)
            # Stay on the keepalive grid; skip beats we missed rather than bursting them.
            self.next_status += keepalive * max(1, int((now - self.next_status) / keepalive) + 1)
        events, actions = self.membership.check(now)
        self.apply(actions)
        for e in events:
            if isinstance(e, PeerDead) and not e.graceful and self._defer_peer_death(e):
                self._spawn(self._diagnose_silence())
                continue
            self.feed(e)      # first: the takeover's task is then scheduled before the diagnosis's ping
            if isinstance(e, PeerDead) and not e.graceful:
                self._spawn(self._diagnose_silence())
        self.feed(_TICK)
        if self.stopping.is_set():
            return None
        return min(self._next_deadline(), time.monotonic() + 60.0)

    def _next_deadline(self) -> float:
        assert self.membership and self.failover
        return min(self.next_status, self.membership.next_deadline(), self.failover.next_deadline())

    # ---- input ------------------------------------------------------------------------------------
    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.membership is not None
        try:
            msg = decode(data, self.signer, max_size=MAX_DATAGRAM)
        except WireError as exc:
            self.membership.drop(exc.reason)
            if exc.reason in ("bad_auth", "unknown_key"):
                self.log("debug", "packet.dropped", None, {"reason": exc.reason, "from": addr[0]})
            return
        except Exception:   # the codec promises WireError only; a bug must not kill the daemon
            self.membership.drop("malformed")
            return
        if msg.type is None or msg.src is None:
            self.membership.drop("malformed")
            return
        fields = {}
        for ftype, name, value in msg.fields:
            if ftype == 0 and name not in fields:
                fields[name] = value.decode("utf-8", "replace")
        incoming = Incoming(msg.type, msg.src.lower(), msg.hg, msg.seq, fields, msg.get_bytes("srcuuid"), msg.dest)
        now = time.monotonic()
        reason, events, actions = self.membership.receive(incoming, now)
        if reason is not None:
            self.apply(self.drop_log.filter(reason, actions, now))
            return
        self.counters["received"] += 1
        self.diagnosis = None
        self.apply(actions)
        for e in events:
            self.feed(e)
        if incoming.type == "status":
            self.peer_digest = fields.get(DIGEST_FIELD)
            self._beat_along(now)
        # No turn for a datagram: the timer moves to the (possibly new) earliest deadline instead.
        self.wake.reschedule(self._next_deadline())

    def _beat_along(self, now: float) -> None:
        """Send our heartbeat with the peer's when ours is due within half a keepalive anyway.

        The two nodes then beat in step, and a node wakes about once per keepalive instead of twice (once
        to send, once to receive): waking up is most of what an idle agent costs. Our beats stay at most
        one keepalive apart, and at least half a keepalive, so the peer never sees a late heartbeat and
        never more than twice the configured rate."""
        assert self.failover is not None
        keepalive = self.config.hacf.timers.keepalive
        running = self.wake.at != float("-inf") and not self.stopping.is_set()
        if running and self.next_status - now <= keepalive / 2:
            self._send_status(self.failover.status_word)
            self.next_status = now + keepalive

    def feed(self, event: Event) -> None:
        assert self.failover is not None
        self.apply(self.failover.handle(event, time.monotonic()))

    # ---- output -----------------------------------------------------------------------------------
    def apply(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Send):
                self._send(a.type, a.body)
            elif isinstance(a, Log):
                self.log(a.level, a.event, a.classic, a.fields)
            elif isinstance(a, Acquire):
                if a.hold & Hold.FOREIGN and self.takeover_started is None:
                    self.takeover_started = time.monotonic()
                self._spawn(self._acquire(a.hold, a.reason))
            elif isinstance(a, Release):
                self._spawn(self._release(a.hold, a.reason))
            elif isinstance(a, Announce):
                self._announce(a.hold)
            elif isinstance(a, Retransmit):
                for seq in range(a.firstseq, a.lastseq + 1):
                    raw = self.history.get(seq)
                    if raw is not None and self.transport is not None:
                        self.transport.send(raw)
                        self.counters["retransmitted"] = self.counters.get("retransmitted", 0) + 1
            elif isinstance(a, Reply):
                fut = self.requests.pop(a.request_id, None)
                if fut is not None and not fut.done():
                    fut.set_result((a.ok, a.message))
            elif isinstance(a, Exit):
                _sd_notify("STOPPING=1")
                self.stopping.set()
                self.wake.set()

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cleanup_stale(self) -> None:
        for g in self.config.groups:
            await self.runner.cleanup_stale(g)

    async def _acquire(self, hold: Hold, reason: str) -> None:
        if self.stale_cleanup is not None:
            await self.stale_cleanup       # else it could remove the VIP we are about to add
        ok, detail = True, ""
        started = time.monotonic()
        decided = self.takeover_started if hold & Hold.FOREIGN and self.takeover_started is not None else started
        for group in self._groups(hold):
            self.log("info", "group.acquire", f"Acquiring resource group: {group.home_node} "
                     + " ".join(r.spec for r in group.resources), {"group": group.key, "reason": reason})
            result = await self.runner.acquire(group)
            if result.ok:
                self.group_history.acquired(group.key, decided)
            if not result.ok:
                ok = False
                failed = result.failed
                detail = f"{group.key}: {failed.resource} {failed.action} rc={failed.rc}" if failed else group.key
        took = time.monotonic() - started
        if hold & Hold.FOREIGN and self.takeover_started is not None:
            self.last_takeover = {"at": time.time(), "ms": round((time.monotonic() - self.takeover_started) * 1000)}
            self.takeover_started = None
        self.log("info", "resources.acquired", None, {"hold": hold.word, "ok": ok, "ms": round(took * 1000)})
        self.feed(ResourcesDone("acquire", hold, ok, detail))
        self.wake.set()

    async def _release(self, hold: Hold, reason: str) -> None:
        ok, details = True, []
        for group in reversed(self._groups(hold)):
            self.log("info", "group.release", f"Releasing resource group: {group.home_node} "
                     + " ".join(r.spec for r in group.resources), {"group": group.key, "reason": reason})
            result = await self.runner.release(group)
            self.group_history.released(group.key)     # the VIP is gone even when a stop failed
            if not result.ok:
                ok = False
                details += [f"{c.resource} {c.action} rc={c.rc}" for c in result.failed]
        self.feed(ResourcesDone("release", hold, ok, "; ".join(details)))
        self.wake.set()

    def _announce(self, hold: Hold) -> None:
        """Split-brain heal: the runner announces each VIP where it placed it (bursts run in the background)."""
        for group in self._groups(hold):
            self.runner.announce(group)

    # ---- ping nodes and GARP refresh --------------------------------------------------------------
    async def _watch_ping_nodes(self) -> None:
        """Heartbeat's `ping` nodes: one ICMP echo to each per keepalive; the failover machine hears
        only when this node starts or stops reaching any of them (`Connectivity`)."""
        assert self.ping_nodes is not None
        nodes = self.ping_nodes
        warned = False
        while True:
            keepalive = self.config.hacf.timers.keepalive
            began = time.monotonic()
            try:
                answers = await asyncio.gather(*(ping(n, timeout=0.9 * keepalive, tries=1) for n in nodes.nodes))
            except PermissionError:
                answers = [False] * len(nodes.nodes)
                if not warned:
                    warned = True
                    self.log("error", "ping.no_icmp", "ping nodes cannot be probed: ICMP echo needs CAP_NET_RAW", {})
            now = time.monotonic()
            for node, ok in zip(nodes.nodes, answers):
                if ok:
                    nodes.answered(node, now)
            events, actions = nodes.check(now)
            self.apply(actions)
            for e in events:
                self.feed(e)
                self.wake.set()
            self._release_deferred_death()
            await asyncio.sleep(max(0.0, began + keepalive - time.monotonic()))

    def _defer_peer_death(self, event: PeerDead) -> bool:
        """Hold a peer's death back until a ping node has answered after the heartbeats stopped.

        A cable pulled on this node cuts the peer and the ping nodes in the same instant; the peer's death
        (deadtime) may then come before the ping verdict (deadping), and the node would take over first
        and release after. An answer later than the first missing heartbeat proves this node is not the
        one cut off; without one, the death waits for the next probe round or for the verdict.
        """
        assert self.membership is not None
        if self.ping_nodes is None or self.membership.peer.last_heard is None:
            return False
        proof_after = self.membership.peer.last_heard + self.config.hacf.timers.keepalive
        if self.ping_nodes.answered_since(proof_after):
            return False
        self._deferred_death = (event, proof_after)
        self.log("info", "peer.dead_deferred", "Peer is dead: confirming a ping node answers before taking over",
                 {"node": self.peer})
        return True

    def _release_deferred_death(self) -> None:
        """After a probe round: feed the held-back death once a ping node proved us connected, or once
        the verdict says we are not (the machine then refuses the takeover and says why)."""
        if self._deferred_death is None or self.ping_nodes is None or self.membership is None:
            return
        event, proof_after = self._deferred_death
        if self.membership.peer.status != "dead":
            self._deferred_death = None          # heard again meanwhile: nothing died
            return
        if self.ping_nodes.answered_since(proof_after) or self.ping_nodes.reachable is False:
            self._deferred_death = None
            self.feed(event)
            self.wake.set()

    def _start_garp_refresh(self) -> None:
        if self.config.ext.garp_refresh > 0 and (self._garp_refresh is None or self._garp_refresh.done()):
            self._garp_refresh = asyncio.get_running_loop().create_task(self._refresh_garp())
            self._tasks.add(self._garp_refresh)
            self._garp_refresh.add_done_callback(self._tasks.discard)

    async def _refresh_garp(self) -> None:
        """hbvip.cf `garp_refresh`: while holding, announce each native VIP again every period, so a
        client or switch whose ARP entry expired, or that missed the takeover burst, stays on this MAC.
        Ends when a reload sets it to 0; a reload that sets it again starts it again."""
        while (period := self.config.ext.garp_refresh) > 0:
            await asyncio.sleep(period)
            fo = self.failover
            if fo is None or fo.busy is not None:
                continue                 # a release may be under way: never announce what is going away
            for group in self._groups(fo.held):
                self.runner.announce(group, count=REFRESH_FRAMES, quiet=True)

    def _send_status(self, st: str) -> None:
        body = (("st", st), ("dt", f"{round(self.config.hacf.timers.deadtime * 1000):x}"), ("protocol", "1"),
                (DIGEST_FIELD, self.config.digest))
        self._send("status", body)

    async def _diagnose_silence(self) -> None:
        """The peer went silent: if it still answers ping, say that heartbeats are lost, not the peer."""
        try:
            why = await explain_silence(self.transport.peer_addresses if self.transport else [],
                                        self.config.hacf.udpport)
        except PermissionError:
            self.log("debug", "diagnosis.no_icmp", None, {"error": "CAP_NET_RAW missing"})
            return
        if why is not None and self.membership is not None and self.membership.peer.status == "dead":
            self.diagnosis = why
            self.log("warning", "peer.alive_no_heartbeats", why, {"node": self.peer})

    def _send(self, mtype: str, body: tuple[tuple[str, str | bytes], ...]) -> None:
        if self.transport is None:
            return
        seq: int | None = None
        ld: str | None = None
        if not mtype.startswith("NS_"):
            self.seq += 1
            seq = self.seq
            ld = _loadavg()
        dest = None
        destuuid = None
        rest = []
        for k, v in body:
            if k == "dest" and isinstance(v, str):
                dest = v
            elif k == "destuuid" and isinstance(v, bytes):
                destuuid = v
            else:
                rest.append((k, v))
        fields = build(mtype, rest, src=self.config.node_name, srcuuid=self.uuid, seq=seq, hg=self.generation,
                       ts=int(time.time()), ld=ld, dest=dest, destuuid=destuuid)
        data = encode(fields, self.signer)
        if seq is not None:
            self.history[seq] = data
            while len(self.history) > SEND_HISTORY:
                self.history.popitem(last=False)
        self.transport.send(data)
        self.counters["sent"] += 1

    # ---- reload -------------------------------------------------------------------------------------
    def reload(self) -> tuple[bool, str]:
        """SIGHUP: load the files again; a broken config is refused and the running one kept."""
        try:
            new = load_config(self.paths.config_dir, self.config.node_name, init_dir=self.paths.init_dir)
        except ConfigError as exc:
            self.log("error", "reload.refused", "Configuration reload refused; keeping the running configuration",
                     {"problems": len(exc.problems)})
            for p in exc.problems:
                self.log("error", "config.problem", str(p))
            return False, str(exc)
        old = self.config
        assert self.membership is not None and self.failover is not None
        if self.failover.busy is not None:
            return False, "a resource transition is in progress; reload again when it is done"
        renamed = new.peers[0].lower() != old.peers[0].lower()
        if renamed:
            # A rolling rename: the peer comes back under its new name (and a new hb_uuid). Its groups
            # keep their identity, so nothing this node holds is touched.
            self._rename_peer(old.peers[0], new.peers[0])
        held = self.failover.held
        # A group is unchanged when its home node and resources are; line numbers do not count, and a
        # renamed peer's groups are the same groups under the new name.
        rename = {old.peers[0].lower(): new.peers[0].lower()} if renamed else {}
        old_sigs = {_signature(g, rename) for g in old.groups}
        new_sigs = {_signature(g) for g in new.groups}
        gone = [g for g in old.groups if _signature(g, rename) not in new_sigs]
        added = [g for g in new.groups if _signature(g) not in old_sigs]
        mine = {g.key for g in self._groups(held, old)}
        mine_new = {g.key for g in self._groups(held, new)}
        self.config = new
        to_release = [g for g in gone if g.key in mine]
        to_acquire = [g for g in added if g.key in mine_new]
        if to_release or to_acquire:
            self._spawn(self._regroup(to_release, to_acquire))
        t = new.hacf.timers
        self.membership.retime(deadtime=t.deadtime, warntime=t.warntime, initdead=t.initdead)
        self.signer = Signer.from_authkeys(new.authkeys)
        self._spawn(self._retransport(new))
        self.runner.script_timeout = new.ext.script_timeout
        self.runner.garp_count, self.runner.garp_interval = new.ext.garp_count, new.ext.garp_interval
        self._start_garp_refresh()
        if (new.hacf.ping, new.hacf.timers.deadping) != (old.hacf.ping, old.hacf.timers.deadping):
            self.log("warning", "reload.partial", "ping/deadping changes take effect at the next restart", {})
        if (new.ext.metrics_listen, new.ext.metrics_textfile) != (old.ext.metrics_listen, old.ext.metrics_textfile):
            self.log("warning", "reload.partial", "metrics_listen/metrics_textfile change at the next restart", {})
        self.log.reopen()
        self.log("info", "reload.done", "Configuration reloaded.",
                 {"digest": new.digest, "released": len(to_release), "acquired": len(to_acquire)})
        return True, "reloaded"

    def _rename_peer(self, old: str, new: str) -> None:
        assert self.membership is not None and self.failover is not None
        alive = self.membership.peer.status not in ("unknown", "dead")
        tail = "; it is still running under the old name and will be declared dead" if alive else ""
        self.log("warning" if alive else "info", "peer.renamed", f"Peer node {old} is now {new}{tail}",
                 {"old": old, "new": new, "peer_was_alive": alive})
        self.peer = new
        self.membership.rename_peer(new, time.monotonic())
        self.failover.peer = new

    async def _regroup(self, release: list[ResourceGroup], acquire: list[ResourceGroup]) -> None:
        """Apply a reload's group changes to the groups this node holds; others are left alone."""
        if self.stale_cleanup is not None:
            await self.stale_cleanup
        for group in reversed(release):
            self.log("info", "group.release", None, {"group": group.key, "reason": "reload"})
            await self.runner.release(group)
            self.group_history.released(group.key)
        for group in acquire:
            self.log("info", "group.acquire", None, {"group": group.key, "reason": "reload"})
            started = time.monotonic()
            if (await self.runner.acquire(group)).ok:
                self.group_history.acquired(group.key, started)

    async def _retransport(self, cfg: Config) -> None:
        """Follow a reload's heartbeat paths (a new peer address in ha.cf or /etc/hosts, another port):
        the new sockets open before the old ones close, both deliver to the same handler, so no
        heartbeat falls in between. Unchanged paths keep the running transport."""
        new = self._make_transport(cfg)
        try:
            await new.start()
        except (OSError, TransportError) as exc:
            self.log("error", "reload.transport", "Keeping the previous heartbeat paths", {"error": str(exc)})
            return
        old = self.transport
        if old is not None and (new.port, new.peer_addresses, new.broadcast_interfaces) == \
                (old.port, old.peer_addresses, old.broadcast_interfaces):
            new.close()
            return
        self.transport = new
        if old is not None:
            old.close()
        self.log("info", "transport.up", None, {"port": new.port, "peers": ",".join(new.peer_addresses),
                                                "reason": "reload"})

    # ---- control API --------------------------------------------------------------------------------
    async def request(self, kind: str, which: str, timeout: float) -> tuple[bool, str]:
        rid = self._next_request
        self._next_request += 1
        fut: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
        self.requests[rid] = fut
        self.feed(Command(kind, which, rid))
        self.wake.set()
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self.requests.pop(rid, None)
            return False, f"timed out after {timeout:g} s; see `hbvip status`"

    def status(self) -> dict[str, object]:
        assert self.membership is not None and self.failover is not None
        now = time.monotonic()
        peer = self.membership.peer
        fo = self.failover
        me = self.config.node_name.lower()
        groups = []
        for g in self.config.groups:
            cat = Hold.LOCAL if g.home_node.lower() == me else Hold.FOREIGN
            busy = fo.busy is not None and bool(fo.busy[1] & cat)
            if fo.held & cat and not busy:
                holder, state = self.config.node_name, "held"
            elif busy:
                holder, state = None, fo.busy[0] + "ing" if fo.busy else "transition"
            elif fo.peer_held & cat:
                holder, state = self.peer, "held_by_peer"
            elif fo.failed & cat:
                holder, state = None, "failed"
            else:
                holder, state = None, "unserved"
            since = fo.since.get(cat)
            groups.append({"key": g.key, "home_node": g.home_node, "holder": holder, "state": state,
                           "resources": [r.spec for r in g.resources],
                           "vips": [v.address for v in g.vips],
                           "since_s": round(now - since, 3) if since is not None and holder == self.config.node_name
                           else None, **self.group_history.fields(g.key)})
        return {
            "node": self.config.node_name,
            "version": __version__,
            "status": fo.status_word,
            "phase": fo.phase.value,
            "stable": fo.stable,
            "hold": fo.held.word,
            "generation": self.generation,
            "uptime_s": round(now - self.started, 3),
            "config_digest": self.config.digest,
            "auto_failback": self.config.hacf.auto_failback,
            "timers": {"keepalive": self.config.hacf.timers.keepalive, "warntime": self.config.hacf.timers.warntime,
                       "deadtime": self.config.hacf.timers.deadtime, "initdead": self.config.hacf.timers.initdead},
            "peer": {"name": self.peer, "state": peer.status, "hold": fo.peer_held.flipped().word,
                     "stable": fo.peer_stable,
                     "last_heard_s": round(now - peer.last_heard, 3) if peer.last_heard is not None else None,
                     "deadtime_s": self.membership.dead_after(), "generation": peer.hg,
                     "late_heartbeats": peer.late_heartbeats,
                     "addresses": self.transport.peer_addresses if self.transport else [],
                     "config_digest": self.peer_digest,
                     "config": digest_state(self.config.digest, self.peer_digest),
                     "diagnosis": self.diagnosis},
            "groups": groups,
            "holding_nothing": fo.holding_nothing_because if fo.held == Hold.NONE else None,
            "ping": None if self.ping_nodes is None else {
                "reachable": bool(self.ping_nodes.reachable), "deadping_s": self.ping_nodes.deadping,
                "nodes": [{"address": v.address, "up": v.up, "last_answer_s": v.last_answer_s}
                          for v in self.ping_nodes.view(now)]},
            "last_takeover": self.last_takeover or None,
            "counters": {"packets_sent": self.counters["sent"], "packets_received": self.counters["received"],
                         "retransmitted": self.counters.get("retransmitted", 0),
                         "dropped": {k: v for k, v in sorted(self.membership.dropped.items()) if k != "own"},
                         **self.runner.counters,
                         **({f"transport_{k}": v for k, v in self.transport.counters.items()}
                            if self.transport else {})},
        }


def _hostport(listen: tuple[str, int] | None) -> str:
    return "-" if listen is None else (f"[{listen[0]}]:{listen[1]}" if ":" in listen[0] else f"{listen[0]}:{listen[1]}")


def _signature(group: ResourceGroup, rename: dict[str, str] | None = None) -> tuple[str, tuple[str, ...]]:
    home = group.home_node.lower()
    return (rename or {}).get(home, home), tuple(r.spec for r in group.resources)


class _LoadAvg:
    """The `ld` field. The kernel updates /proc/loadavg every 5 s, so reading it more than once a second
    (a 50 ms keepalive sends 20 messages a second) would only cost an open/read/close per message."""

    def __init__(self) -> None:
        self.text = ""
        self.read_at = float("-inf")

    def __call__(self) -> str:
        now = time.monotonic()
        if now - self.read_at >= 1.0:
            try:
                with open("/proc/loadavg", encoding="ascii") as f:
                    self.text = f.read().strip()
            except OSError:
                self.text = "0.00 0.00 0.00 1/1 1"
            self.read_at = now
        return self.text


_loadavg = _LoadAvg()


def _sd_notify(message: str) -> None:
    """systemd's notify protocol (Type=notify), by hand: one datagram, no library needed."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
            s.sendall(message.encode())
    except OSError:
        pass


def load(paths: Paths, node_name: str | None) -> Config:
    return load_config(paths.config_dir, node_name, init_dir=paths.init_dir)
