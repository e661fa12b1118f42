"""The composition root: start-up, signals and wiring of one node (`hbvip run`).

It builds the parts (log, identity, link, node, control socket, metrics), starts them in order, hands
the node the signals, and tears everything down when the node's loop ends. Every decision lives in
`hbvip.cluster`, fed by `hbvip.node`; the side effects live in the parts it wires together.

Start-up is ordered for the time to the first heartbeat, which is mostly imports: the removal of stale
VIPs starts first, the sockets open and the first heartbeats (`init`, `up`) go out with only the config,
the wire and the sockets loaded; then the decision machinery (`hbvip.node`, `hbvip.cluster`) is imported
and the node built, before the loop reads any datagram. The control socket, metrics and signals follow.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Callable

from . import __version__
from typing import TYPE_CHECKING

from .clock import SYSTEM_CLOCK
from .config import Config
from .dirs import Paths
from .link import Link, status_body, transport_for
from .log import EventLog
from .net.transport import TransportError
from .resources.runner import ResourceRunner, remove_stale_vips, runner_for
from .sdnotify import sd_notify
from .turns import TaskSet
from .wire import Signer
from .wire.identity import current_generation, increment_generation, load_or_create_uuid, record_uuid_host, uuid_host

if TYPE_CHECKING:
    from .cluster.inplace import RestartRecord
    from .metrics import MetricsExporter
    from .node import Node

__all__ = ["Agent", "Paths"]

# The node and what serves it (control socket, metrics) are imported after the first heartbeat left.
# pylint: disable=import-outside-toplevel


class _Inbox:
    """The transport's datagram callback until the node exists. The node is built before the loop runs
    again after the sockets opened, so nothing arrives here before `to` is set."""

    def __init__(self) -> None:
        self.to: Callable[[bytes, tuple[str, int]], None] | None = None

    def __call__(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.to is not None:
            self.to(data, addr)


class Agent:
    """One node of a pair. `run()` returns the process exit code."""

    def __init__(self, config: Config, paths: Paths, *, log_stderr: bool = False) -> None:
        self.config = config
        self.paths = paths
        self.clock = SYSTEM_CLOCK
        hacf = config.hacf
        self.log = EventLog(config.node_name, logfile=hacf.logfile, debugfile=hacf.debugfile,
                            logfacility=hacf.logfacility, stderr=log_stderr or not (hacf.logfile or hacf.debugfile),
                            debug=bool(hacf.debug))
        self.started = self.clock.monotonic()
        self.exec_next = False      # restarting in place: `hbvip run` execs the new agent once this returns

    def _identity(self, link: Link, record: RestartRecord | None) -> None:
        """Our hb_uuid (made once per state dir) and this start's generation, as Heartbeat keeps them."""
        cfg, state_dir = self.config, self.paths.state_dir
        link.uuid, created = load_or_create_uuid(state_dir)
        made_under = uuid_host(state_dir)
        if created:
            self.log("info", "uuid.created", "No uuid found for current node - generating a new uuid.")
            record_uuid_host(state_dir, cfg.node_name)
        elif made_under and made_under != cfg.node_name:
            self.log("warning", "uuid.other_host",
                     f"hb_uuid in {state_dir} was made under hostname {made_under!r}, this node is "
                     f"{cfg.node_name!r}: the peer may reject it as a replay; delete hb_uuid after a rename",
                     {"made_under": made_under, "node": cfg.node_name})
        elif not made_under:
            record_uuid_host(state_dir, cfg.node_name)
        if record is not None:        # the agent before us, restarted in place: same generation, next seq
            link.generation, link.seq = record.generation, record.seq
        else:
            link.generation = increment_generation(state_dir)
        self.log("info", "generation", f"Heartbeat generation: {link.generation}", {"hg": link.generation})

    async def _record_to_continue(self, runner: ResourceRunner) -> RestartRecord | None:
        """The record of a restart in place this start continues, or None (then it starts as always).
        A record is continued only when fresh, meant for this node and generation, and every VIP of the
        groups it held is still here (`runner.adopt` notes where, for the GARP refresh)."""
        cfg = self.config
        if not self.paths.restart_record.exists():
            return None               # the usual start: nothing more to import before the first heartbeat
        from .cluster.groups import groups_of
        from .cluster.inplace import stale_because
        from .inplace import take_record
        record, why = take_record(self.paths.restart_record)
        if record is not None:
            why = stale_because(record, node=cfg.node_name, peer=cfg.peers[0], now=self.clock.wall(),
                                generation=current_generation(self.paths.state_dir))
        if record is not None and why is None:
            missing = [ip for g in groups_of(cfg.groups, cfg.node_name, record.held) for ip in await runner.adopt(g)]
            why = f"VIP {', '.join(missing)} is no longer on this host" if missing else None
        if why is None:
            return record
        self.log("warning", "restart.not_resumed", f"Not continuing the agent restarted in place: {why}; "
                 "starting as after a stop", {"reason": why})
        return None

    async def run(self) -> int:
        cfg = self.config
        self.log("info", "start", f"Configuration validated. Starting hbvip {__version__}",
                 {"node": cfg.node_name, "peer": cfg.peers[0], "version": __version__})
        link = Link(cfg.node_name, Signer.from_authkeys(cfg.authkeys), self.clock)
        runner = runner_for(cfg, self.paths.init_dir, self.log)
        record = await self._record_to_continue(runner)
        self._identity(link, record)
        # We hold nothing at start (but what a restart in place kept): any copy of a VIP here is stale (e.g.
        # left by kill -9). Removing them starts first and overlaps with opening the sockets and meeting
        # the peer; an acquisition waits for it.
        tasks = TaskSet()
        cleanup = tasks.spawn(remove_stale_vips(runner, [g for g in cfg.groups if g.key not in self._kept(record)]))
        inbox = _Inbox()
        link.transport = transport_for(cfg, inbox)
        try:
            await link.transport.start()
        except TransportError as exc:   # e.g. no CAP_NET_BIND_SERVICE: say the fix, not a traceback
            self.log("error", "transport.failed", str(exc), {"port": cfg.hacf.udpport})
            print(f"hbvip: {exc}", file=sys.stderr)
            await cleanup
            self.log.close()
            return 1
        self.log("info", "transport.up", None, {"port": cfg.hacf.udpport, "peers": ",".join(link.peer_addresses)})
        for word in ("init", "up") if record is None else ("active",):
            link.send("status", status_body(cfg, word))
        started_at = self.clock.monotonic()
        node = self._node(link, runner, tasks, cleanup)
        if record is not None:
            node.resume(record)
        node.next_status = started_at + cfg.hacf.timers.keepalive
        inbox.to = node.on_datagram
        from .control import ControlServer
        control = ControlServer(node, self.paths.run_dir)
        await control.start()
        metrics = await self._start_metrics(node)
        self._install_signals(node)
        self.log("info", "status.local", f"Local status now set to: '{'up' if record is None else 'active'}'")
        sd_notify("READY=1\nSTATUS=waiting for peer")
        # Everything allocated so far (imports, pyroute2, the config) lives as long as the process: keep it
        # out of the collector's full passes, which would otherwise walk the whole heap again and again.
        gc.freeze()
        try:
            await node.loop()
        finally:
            await control.stop()
            if metrics is not None:
                await metrics.stop()
            link.transport.close()
            node.tasks.cancel_all()
            if node.restarting:
                self._hand_over(node)
            self.log("info", "exit", None, {})
            self.log.close()
        return 0

    def _kept(self, record: RestartRecord | None) -> set[str]:
        """The groups a restart in place kept: their VIPs are ours, not stale."""
        if record is None:
            return set()
        from .cluster.groups import groups_of
        return {g.key for g in groups_of(self.config.groups, self.config.node_name, record.held)}

    def _hand_over(self, node: Node) -> None:
        """The node stopped to restart in place: leave the record for the new agent, which `hbvip run`
        then execs (see `exec_next`)."""
        from .inplace import write_record
        try:
            path = write_record(self.paths.restart_record, node.restart_record())
        except OSError as exc:      # the peer's grace runs out and it takes over; our VIPs stay (as after kill -9)
            self.log("error", "restart.record_failed", f"cannot write the handover record: {exc}", {})
            return
        self.exec_next = True
        self.log("info", "restart.exec", f"Handover record written to {path}; starting the new agent", {})

    def _node(self, link: Link, runner: ResourceRunner, tasks: TaskSet, cleanup: asyncio.Task[None]) -> Node:
        """The node, built right after the first heartbeats: its import is most of the agent's."""
        from .node import Node
        node = Node(self.config, self.paths, log=self.log, link=link, clock=self.clock, started=self.started,
                    runner=runner, tasks=tasks)
        node.groups.start_cleanup(cleanup)
        node.start_ping_watch()
        node.start_health_watch()
        node.groups.start_garp_refresh()
        return node

    async def _start_metrics(self, node: Node) -> MetricsExporter | None:
        """The Prometheus exporter, when hbvip.cf asks for one (None: not even imported)."""
        ext = self.config.ext
        if ext.metrics_listen is None and ext.metrics_textfile is None:
            return None
        from .metrics import MetricsExporter
        metrics = MetricsExporter(node.status, listen=ext.metrics_listen, textfile=ext.metrics_textfile,
                                  on_error=lambda event, fields: self.log("warning", event, None, fields))
        try:
            await metrics.start()
            if metrics.enabled:
                self.log("info", "metrics.up", None, {"listen": _hostport(ext.metrics_listen),
                                                      "textfile": ext.metrics_textfile or "-"})
        except OSError as exc:     # metrics are for watching; they never keep the pair from failing over
            self.log("error", "metrics.failed", None, {"listen": _hostport(ext.metrics_listen),
                                                       "error": exc.strerror})
        return metrics

    @staticmethod
    def _install_signals(node: Node) -> None:
        loop = asyncio.get_running_loop()
        for sig, name in ((signal.SIGTERM, "term"), (signal.SIGINT, "term"), (signal.SIGHUP, "hup")):
            loop.add_signal_handler(sig, node.signal, name)


def _hostport(listen: tuple[str, int] | None) -> str:
    return "-" if listen is None else (f"[{listen[0]}]:{listen[1]}" if ":" in listen[0] else f"{listen[0]}:{listen[1]}")
