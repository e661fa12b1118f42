"""Prometheus metrics: the pair as this node sees it, in the text exposition format.

Operators already scrape node_exporter on every box, so the pair's state goes where they look: an
opt-in HTTP endpoint (off unless hbvip.cf sets `metrics_listen`; loopback when merely switched on)
and/or a node_exporter textfile. Both are rendered from the node's `StatusView` (hbvip.views) — the
same view `hbvip status --json` prints — so the numbers can never disagree with the CLI.
The HTTP side is a few lines of asyncio rather than a dependency: it answers `GET /metrics` and
nothing else, and closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .views import StatusView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PEER_STATES = ("unknown", "init", "up", "active", "dead")
#: Seconds between textfile rewrites when nothing changed (node_exporter reads it on each scrape).
TEXTFILE_REFRESH = 10.0
#: How often the textfile writer looks for a change (a holder, a peer state, a counter).
TEXTFILE_POLL = 0.5
MAX_REQUEST_HEAD = 8192
REQUEST_TIMEOUT = 5.0


# ---- exposition ---------------------------------------------------------------------------------

def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind, self.help = name, kind, help_text
        self.samples: list[tuple[dict[str, object], float | int | bool]] = []

    def add(self, value: float | int | bool | None, **labels: object) -> None:
        if value is not None:
            self.samples.append((labels, value))

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in self.samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            yield f"{self.name}{{{text}}} {_number(value)}" if text else f"{self.name} {_number(value)}"


def render(status: StatusView) -> str:
    """The exposition text for one `Agent.status()` snapshot."""
    fams: dict[str, _Family] = {}

    def fam(name: str, kind: str, help_text: str) -> _Family:
        return fams.setdefault(name, _Family(f"hbvip_{name}", kind, help_text))

    node = status["node"]
    fam("info", "gauge", "Constant 1; labels carry the node name, version and config digest.").add(
        1, node=node, version=status["version"], config_digest=status["config_digest"])
    fam("uptime_seconds", "gauge", "Seconds since this agent started.").add(status["uptime_s"])
    fam("generation", "gauge", "This node's Heartbeat generation (hb_generation).").add(status["generation"])
    fam("stable", "gauge", "1 when no resource move is in progress on this node.").add(bool(status["stable"]))

    peer = status["peer"]
    states = fam("peer_state", "gauge", "1 for the peer's current state as this node sees it.")
    for state in PEER_STATES + ((peer["state"],) if peer["state"] not in PEER_STATES else ()):
        states.add(peer["state"] == state, peer=peer["name"], state=state)
    fam("peer_last_heard_seconds", "gauge", "Seconds since the last valid heartbeat from the peer.").add(
        peer["last_heard_s"], peer=peer["name"])
    fam("peer_deadtime_seconds", "gauge", "Silence after which the peer is declared dead.").add(
        peer["deadtime_s"], peer=peer["name"])
    fam("peer_late_heartbeats_total", "counter", "Heartbeats that arrived after warntime.").add(
        peer["late_heartbeats"], peer=peer["name"])

    _paths(status, fam)
    if status.get("ping"):
        up = fam("ping_node_up", "gauge", "1 while the ha.cf ping node answered ICMP echo within deadping.")
        for n in status["ping"]["nodes"]:
            up.add(n["up"], node=n["address"])

    if status.get("health") is not None:
        _health(status, fam)

    holder = fam("group_holder", "gauge", "1 when this node holds the resource group.")
    transitions = fam("group_transitions_total", "counter", "Acquisitions and releases of the group by this node.")
    last_at = fam("group_last_takeover_timestamp_seconds", "gauge", "Unix time this node last acquired the group.")
    last_took = fam("group_last_takeover_duration_seconds", "gauge",
                    "From the decision to move the group to this node until it was served.")
    for g in status["groups"]:
        labels = {"group": g["key"], "home_node": g["home_node"]}
        holder.add(g["holder"] == node, **labels)
        transitions.add(g.get("transitions", 0), **labels)
        last_at.add(g.get("last_takeover_at"), **labels)
        last_took.add(g.get("last_takeover_s"), **labels)

    c = status["counters"]
    fam("packets_sent_total", "counter", "Heartbeat datagrams sent.").add(c["packets_sent"])
    fam("packets_received_total", "counter", "Valid heartbeat datagrams received from the peer.").add(
        c["packets_received"])
    dropped = fam("packets_dropped_total", "counter", "Datagrams dropped, by reason.")
    for reason, count in c["dropped"].items():
        dropped.add(count, reason=reason)
    fam("script_runs_total", "counter", "Resource script calls.").add(c.get("script_runs", 0))
    fam("script_failures_total", "counter", "Resource script calls that failed.").add(c.get("script_failures", 0))
    fam("script_timeouts_total", "counter", "Resource script calls killed at script_timeout.").add(
        c.get("script_timeouts", 0))
    return "".join(line + "\n" for f in fams.values() for line in f.lines())


def _paths(status: StatusView, fam: Callable[[str, str, str], _Family]) -> None:
    path_up = fam("path_up", "gauge", "1 while the peer is heard on this heartbeat path (media interface).")
    for p in status.get("paths", []):
        path_up.add(p["up"], peer=p["peer"], interface=p["interface"])


def _health(status: StatusView, fam: Callable[[str, str, str], _Family]) -> None:
    """hbvip.cf's checks, monitors, tracked links, and the eligibility they give each group."""
    healthy = fam("health_probe_healthy", "gauge", "1 while the check, monitor or tracked link allows holding its groups.")
    streak = fam("health_probe_streak", "gauge", "Results in a row equal to the last one (negative: failures).")
    restarts = fam("health_monitor_restarts", "gauge", "Local restarts of a monitored resource since its last clear.")
    for p in status["health"] or []:
        labels = {"kind": p["kind"], "probe": p["name"]}
        healthy.add(p["healthy"], **labels)
        streak.add(-p["streak"] if p["last"] is False else p["streak"], **labels)
        if p["kind"] == "monitor":
            restarts.add(p["restarts"], **labels)
    eligible = fam("group_eligible", "gauge", "1 when this node may hold the group by its health checks.")
    degraded = fam("group_degraded", "gauge", "1 when neither node may hold the group (it stays where it is).")
    for g in status["groups"]:
        eligible.add(g["eligible"], group=g["key"])
        degraded.add(g["degraded"], group=g["key"])


def write_textfile(path: Path, text: str) -> None:
    """Replace `path` atomically: node_exporter must never read a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fingerprint(status: StatusView) -> tuple[object, ...]:
    """What counts as "a change" for the textfile: states, holders, drops and script runs — not clocks
    or the packet counts every heartbeat moves (those are refreshed every TEXTFILE_REFRESH)."""
    c = status["counters"]
    pinged = status.get("ping") or {"nodes": []}
    return (status["peer"]["state"], status["peer"]["late_heartbeats"], status["stable"],
            tuple(n["up"] for n in pinged["nodes"]), tuple(p["up"] for p in status.get("paths", [])),
            tuple((g["key"], g["holder"], g.get("transitions"), g.get("eligible"), g.get("degraded"))
                  for g in status["groups"]),
            tuple((p["name"], p["healthy"], p["last"]) for p in status.get("health") or []),
            tuple(sorted(c["dropped"].items())), c.get("script_runs"), c.get("script_failures"))


# ---- serving ------------------------------------------------------------------------------------

class MetricsExporter:
    """Serves `render(source())` over HTTP and/or keeps a textfile current; both optional."""

    def __init__(self, source: Callable[[], StatusView], *, listen: tuple[str, int] | None = None,
                 textfile: str | None = None, on_error: Callable[[str, dict[str, object]], None] | None = None) -> None:
        self.source = source
        self.listen = listen
        self.textfile = Path(textfile) if textfile else None
        self.on_error = on_error or (lambda event, fields: None)
        self._server: asyncio.AbstractServer | None = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.listen is not None or self.textfile is not None

    async def start(self) -> None:
        if self.listen is not None:
            host, port = self.listen
            self._server = await asyncio.start_server(self._client, host, port, reuse_address=True,
                                                      limit=MAX_REQUEST_HEAD)
        if self.textfile is not None:
            self._writer = asyncio.get_running_loop().create_task(self._keep_textfile())

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _keep_textfile(self) -> None:
        assert self.textfile is not None
        last: tuple[object, ...] | None = None
        written = 0.0
        failing = False
        while True:
            status = self.source()
            now = time.monotonic()
            mark = _fingerprint(status)
            if mark != last or now - written >= TEXTFILE_REFRESH:
                try:
                    write_textfile(self.textfile, render(status))
                    last, written, failing = mark, now, False
                except OSError as exc:
                    if not failing:     # once per outage, not twice a second
                        self.on_error("metrics.textfile_failed", {"path": str(self.textfile), "error": exc.strerror})
                    failing = True
            await asyncio.sleep(TEXTFILE_POLL)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            status, body, ctype = self._answer(head)
        except asyncio.LimitOverrunError:
            status, body, ctype = "431 Request Header Fields Too Large", b"", "text/plain"
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        try:
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _answer(self, head: bytes) -> tuple[str, bytes, str]:
        if len(head) > MAX_REQUEST_HEAD:
            return "431 Request Header Fields Too Large", b"", "text/plain"
        request = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(request) != 3:
            return "400 Bad Request", b"bad request\n", "text/plain"
        method, target = request[0], request[1].split("?", 1)[0]
        if method != "GET":
            return "405 Method Not Allowed", b"GET /metrics only\n", "text/plain"
        if target != "/metrics":
            return "404 Not Found", b"hbvip serves /metrics\n", "text/plain"
        return "200 OK", render(self.source()).encode(), CONTENT_TYPE
