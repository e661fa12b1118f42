"""Prometheus exposition of the node's `StatusView`: names, labels, values an operator's alert rules rely on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from hbvip.metrics import MetricsExporter, render, write_textfile
from hbvip.resources.groups import GroupHistory
from hbvip.views import StatusView
from status_samples import samples, status, value


def test_the_sample_status_has_the_agents_shape(assert_shape: Callable[[object, object], None]) -> None:
    assert_shape(status(), StatusView)


def test_holder_and_transitions_per_group() -> None:
    text = render(status())
    assert value(text, "hbvip_group_holder", group="IPaddr::10.99.0.100/24/eth0", home_node="server1") == 1
    assert value(text, "hbvip_group_holder", group='odd\\"name\\\\x', home_node="server2") == 0
    assert value(text, "hbvip_group_transitions_total", group="IPaddr::10.99.0.100/24/eth0", home_node="server1") == 1
    assert value(text, "hbvip_group_last_takeover_duration_seconds",
                 group="IPaddr::10.99.0.100/24/eth0", home_node="server1") == 0.25
    # a group never taken over here has no timestamp sample at all (not a fake 0)
    assert ("hbvip_group_last_takeover_timestamp_seconds",
            frozenset({("group", 'odd\\"name\\\\x'), ("home_node", "server2")})) not in samples(text)


def test_peer_state_is_one_hot_and_last_heard_and_late_heartbeats_are_exposed() -> None:
    text = render(status())
    assert value(text, "hbvip_peer_state", peer="server2", state="active") == 1
    assert value(text, "hbvip_peer_state", peer="server2", state="dead") == 0
    assert sum(v for (n, _unused), v in samples(text).items() if n == "hbvip_peer_state") == 1
    assert value(text, "hbvip_peer_last_heard_seconds", peer="server2") == 0.42
    assert value(text, "hbvip_peer_late_heartbeats_total", peer="server2") == 2


def test_never_heard_peer_has_no_last_heard_sample() -> None:
    st = status()
    st["peer"] = {**st["peer"], "state": "unknown", "last_heard_s": None}
    text = render(st)
    assert not any(n == "hbvip_peer_last_heard_seconds" for n, _unused in samples(text))
    assert value(text, "hbvip_peer_state", peer="server2", state="unknown") == 1


def test_each_heartbeat_path_is_one_gauge() -> None:
    text = render(status())
    assert value(text, "hbvip_path_up", peer="server2", interface="eth0") == 1
    assert value(text, "hbvip_path_up", peer="server2", interface="eth1") == 0


def test_packet_and_script_counters() -> None:
    text = render(status())
    assert value(text, "hbvip_packets_sent_total") == 40
    assert value(text, "hbvip_packets_received_total") == 38
    assert value(text, "hbvip_packets_dropped_total", reason="bad_auth") == 5
    assert value(text, "hbvip_packets_dropped_total", reason="replay") == 1
    assert value(text, "hbvip_script_runs_total") == 4
    assert value(text, "hbvip_script_failures_total") == 1


def test_group_history_counts_both_directions_and_times_the_takeover() -> None:
    h = GroupHistory()
    assert h.fields("g") == {"transitions": 0, "last_takeover_at": None, "last_takeover_s": None}
    h.acquired("g", decided_at=100.0, now=100.75, wall=1_700_000_000.0)
    h.released("g")
    f = h.fields("g")
    assert f == {"transitions": 2, "last_takeover_s": 0.75, "last_takeover_at": 1_700_000_000.0}


def test_textfile_is_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "textfile" / "hbvip.prom"
    write_textfile(target, "a 1\n")
    write_textfile(target, "a 2\n")
    assert target.read_text() == "a 2\n"
    assert [p.name for p in target.parent.iterdir()] == ["hbvip.prom"]   # no temp file left behind


async def _ask(exporter: MetricsExporter, request: bytes) -> bytes:
    """Drive the HTTP handler over a socketpair: the protocol without touching any network."""
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=theirs)
    task = asyncio.create_task(exporter._client(reader, writer))
    client_reader, client_writer = await asyncio.open_connection(sock=ours)
    client_writer.write(request)
    await client_writer.drain()
    answer = await asyncio.wait_for(client_reader.read(), 5)
    await task
    client_writer.close()
    return answer


@pytest.mark.parametrize("request_bytes, first_line", [
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK"),
    (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK"),
    (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 404 Not Found"),
    (b"POST /metrics HTTP/1.1\r\n\r\n", b"HTTP/1.1 405 Method Not Allowed"),
    (b"garbage\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
    (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 10000 + b"\r\n\r\n", b"HTTP/1.1 431 Request Header Fields Too Large"),
])
def test_http_answers(request_bytes: bytes, first_line: bytes) -> None:
    st = status()
    exporter = MetricsExporter(lambda: st, listen=("127.0.0.1", 0))
    answer = asyncio.run(_ask(exporter, request_bytes))
    head, _unused, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == first_line
    assert f"Content-Length: {len(body)}".encode() in head
    if first_line.endswith(b"200 OK"):
        assert b"text/plain; version=0.0.4" in head
        assert value(body.decode(), "hbvip_group_holder", group="IPaddr::10.99.0.100/24/eth0", home_node="server1") == 1


def test_textfile_writer_follows_changes(tmp_path: Path) -> None:
    st = status()
    target = tmp_path / "hbvip.prom"

    async def scenario() -> tuple[str, str]:
        exporter = MetricsExporter(lambda: st, textfile=str(target))
        await exporter.start()
        try:
            await asyncio.sleep(0.1)
            before = target.read_text()
            st["groups"][0] = {**st["groups"][0], "holder": None, "state": "unserved", "transitions": 2}
            await asyncio.sleep(0.8)
            return before, target.read_text()
        finally:
            await exporter.stop()

    before, after = asyncio.run(scenario())
    grp = {"group": "IPaddr::10.99.0.100/24/eth0", "home_node": "server1"}
    assert value(before, "hbvip_group_holder", **grp) == 1
    assert value(after, "hbvip_group_holder", **grp) == 0
    assert value(after, "hbvip_group_transitions_total", **grp) == 2


def test_status_table_shows_link_holder_since_when_and_last_takeover() -> None:
    """`hbvip status` (text) is read from the same snapshot the metrics come from."""
    import time

    from hbvip.status_table import render_status
    now = time.mktime((2026, 11, 25, 21, 40, 0, 0, 0, -1))
    st = status()
    st["groups"][0] = {**st["groups"][0], "since_s": 600.0, "last_takeover_at": now - 600, "last_takeover_s": 0.25}
    lines = render_status(st, now=now).splitlines()
    assert lines[1].split()[:6] == ["peer", "server2", "active", "holds", "none", "heard"]
    assert lines[2:4] == ["link   ucast eth0 10.99.0.2", "link   ucast6 eth1 fd99:1::2"]
    assert lines[4].split() == ["path", "server2:eth0", "up", "heard", "0.2s", "ago", "datagrams", "40"]
    assert lines[5].split()[:3] == ["path", "server2:eth1", "dead"]
    row = next(ln for ln in lines if ln.startswith("IPaddr::10.99.0.100/24/eth0"))
    assert row.split()[1:] == ["server1", "server1", "held", "21:30:00", "(10m)", "21:30:00", "in", "250", "ms"]
    other = next(ln for ln in lines if ln.startswith('odd"name'))
    assert other.split()[1:] == ["server2", "server2", "held_by_peer"]
    assert lines[-1] == "packets sent 40  received 38  dropped: bad_auth=5, replay=1"


def test_textfile_is_not_rewritten_for_every_heartbeat(tmp_path: Path) -> None:
    """Packet counters move with every heartbeat; rewriting the file for them would churn the disk."""
    st = status()
    target = tmp_path / "hbvip.prom"

    async def scenario() -> tuple[float, float]:
        exporter = MetricsExporter(lambda: st, textfile=str(target))
        await exporter.start()
        try:
            await asyncio.sleep(0.1)
            first = target.stat().st_mtime_ns
            st["counters"] = {**st["counters"], "packets_sent": 41, "packets_received": 39}
            await asyncio.sleep(0.7)
            return first, target.stat().st_mtime_ns
        finally:
            await exporter.stop()

    first, later = asyncio.run(scenario())
    assert first == later
