"""The composition root: the running agent's wiring of one node (`hbvip run`, after `hbvip.boot`).

`hbvip.boot` has logged the start, opened the sockets and sent the first heartbeats (`init`, `up`)
before asyncio and this module are imported. Here the removal of stale VIPs starts first, the decision
machinery (`hbvip.node`, `hbvip.cluster`) is imported and the node built, and the loop starts reading
datagrams; the control socket, metrics and signals follow. The node gets the signals, and everything
is torn down when its loop ends. Every decision lives in `hbvip.cluster`, fed by `hbvip.node`; the side
effects live in the parts it wires together.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from typing import TYPE_CHECKING

from .boot import Booted
from .dirs import Paths
from .resources.runner import ResourceRunner, remove_stale_vips, runner_for
from .sdnotify import sd_notify
from .turns import TaskSet

if TYPE_CHECKING:
    from .link import Link
    from .metrics import MetricsExporter
    from .node import Node

__all__ = ["Agent", "Paths"]

# The node and what serves it (control socket, metrics) are imported after the first heartbeat left.
# pylint: disable=import-outside-toplevel


class Agent:
    """One node of a pair, started by `hbvip.boot.boot`. `run()` returns the process exit code."""

    def __init__(self, booted: Booted) -> None:
        self.booted = booted
        self.config = booted.config
        self.paths = booted.paths
        self.log = booted.log
        self.clock = booted.link.clock
        self.started = booted.started
        self.exec_next = False      # restarting in place: `hbvip run` execs the new agent once this returns

    async def run(self) -> int:
        cfg, link, record = self.config, self.booted.link, self.booted.record
        # We hold nothing at start (but what a restart in place kept): any copy of a VIP here is stale (e.g.
        # left by kill -9). Its removal starts first and overlaps with meeting the peer; an acquisition
        # waits for it.
        tasks = TaskSet()
        runner = runner_for(cfg, self.paths.init_dir, self.log)
        kept = self._kept(runner)
        cleanup = tasks.spawn(remove_stale_vips(runner, [g for g in cfg.groups if g.key not in kept]))
        if self.booted.failed or link.transport is None:
            await cleanup
            self.log.close()
            return 1
        node = self._node(link, runner, tasks, cleanup)
        if record is not None:
            from .inplace import resume
            resume(node, record)
        node.next_status = self.booted.up_at + cfg.hacf.timers.keepalive
        link.transport.on_datagram = node.on_datagram
        link.transport.listen(asyncio.get_running_loop())
        from .control import ControlServer
        control = ControlServer(node, self.paths.run_dir)
        await control.start()
        metrics = await self._start_metrics(node)
        self._install_signals(node)
        self.log("info", "status.local", f"Local status now set to: '{self.booted.word}'")
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

    def _kept(self, runner: ResourceRunner) -> set[str]:
        """The groups a restart in place kept: their VIPs are ours, not stale; the runner notes where
        they are (for GARP refreshes), as after an acquire."""
        if self.booted.record is None:
            return set()
        from .cluster.groups import groups_of
        from .net.ifaddr import addresses_now
        here = addresses_now()
        kept = groups_of(self.config.groups, self.config.node_name, self.booted.record.held)
        for group in kept:
            runner.adopt(group, here)
        return {g.key for g in kept}

    def _hand_over(self, node: Node) -> None:
        """The node stopped to restart in place: leave the record for the new agent, which `hbvip run`
        then execs (see `exec_next`)."""
        from .inplace import record_of, write_record
        try:
            path = write_record(self.paths.restart_record, record_of(node))
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
