"""Replayed heartbeats on the lab: a recording of a live node, resent from its address after it lost
power, must not delay the takeover nor make the survivor believe the node came back.

The scenario of the issue "Replayed heartbeats keep a dead node alive": keepalive 100 ms, warntime
200 ms, deadtime 500 ms; server1's datagrams to server2 are recorded for 3 s; server1 loses power; the
client takes server1's address and resends the recording to server2 at 10 datagrams/s for 4 s. Between
recording and power loss: nothing, a restart of server2's agent, a reload of it, a restart of server1's
(the recording is of an older generation then), or two minutes (`slow`: `make soak`).
"""

from __future__ import annotations

import struct
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from faults import UDP_PORT, running_pair
from lab import Lab
from lab.node import Host
from pair import Timers, wait_until

REPLAY_TIMERS = Timers("100ms", "200ms", "500ms", "2")
RECORD_S = 3.0
RESEND_RATE = 10
RESEND_S = 4.0
OLD_RECORDING_S = 120
FLOOD = Path(__file__).with_name("flood.py")


@pytest.fixture(scope="module")
def replay_lab(lab_support: None) -> Iterator[Lab]:
    """One lab for every variant: each starts its own pair and leaves server1 powered on again."""
    with ExitStack() as stack:
        lab = stack.enter_context(Lab(prefix=f"rp{os.getpid()}", net=None))
        yield lab


def udp_payloads(pcap: bytes) -> list[bytes]:
    """The UDP payloads of a classic pcap of Ethernet frames (what `tcpdump -w` writes)."""
    magic = struct.unpack_from("<I", pcap)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    pos, out = 24, []
    while pos + 16 <= len(pcap):
        caplen = struct.unpack_from(endian + "I", pcap, pos + 8)[0]
        frame = pcap[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        ihl = (frame[14] & 0x0F) * 4
        udp = frame[14 + ihl:]
        length = struct.unpack_from(">H", udp, 4)[0]
        out.append(udp[8:length])
    return out


def record(receiver: Host, sender: Host, seconds: float, tmp_path: Path) -> list[bytes]:
    """Every datagram `sender` sends to `receiver`'s heartbeat port for `seconds`, as captured on the wire."""
    inside = "/var/log/replay-recording.pcap"
    with open(tmp_path / "tcpdump.err", "wb") as err:
        proc = receiver.spawn(["tcpdump", "-Z", "root", "-i", receiver.iface, "-nn", "-U", "-w", inside,
                               f"udp dst port {UDP_PORT} and src host {sender.address}"], stderr=err)
    try:
        wait_until(lambda: b"listening on" in (tmp_path / "tcpdump.err").read_bytes() or proc.poll() is not None,
                   10, "tcpdump to listen")
        time.sleep(seconds)                       # the recording's length is the point, not a settle wait
    finally:
        receiver.kill(proc, signal.SIGTERM)
        proc.wait(5)
    datagrams = udp_payloads(receiver.path(inside).read_bytes())
    receiver.path(inside).unlink()
    return datagrams


def resend(lab: Lab, datagrams: list[bytes], spoofed: Host, target: Host, tmp_path: Path) -> int:
    """The client takes `spoofed`'s address and sends the recording to `target`; returns how many went out."""
    blob = tmp_path / "recording.bin"
    blob.write_bytes(b"".join(struct.pack(">I", len(d)) + d for d in datagrams))
    assert lab.client is not None
    lab.client.run(["ip", "addr", "add", f"{spoofed.address}/32", "dev", lab.client.iface])
    try:
        r = lab.client.run([sys.executable, str(FLOOD), str(blob), target.address, str(UDP_PORT), str(RESEND_RATE),
                            str(RESEND_S), f"{spoofed.address}:{UDP_PORT}"], timeout=RESEND_S + 10)
    finally:
        lab.client.run(["ip", "addr", "del", f"{spoofed.address}/32", "dev", lab.client.iface], check=False)
    sent, errors = (int(part.split("=")[1]) for part in r.stdout.split()[:2])
    assert errors == 0 and sent >= RESEND_RATE * RESEND_S - 1, r.stdout
    return sent


def dropped(status: dict) -> dict[str, int]:
    return status["counters"]["dropped"]


def dropped_since(status: dict, before: dict) -> dict[str, int]:
    """Datagrams dropped per reason between two status answers (the reasons that moved)."""
    now, then = dropped(status), dropped(before)
    return {k: now[k] - then.get(k, 0) for k in now if now[k] != then.get(k, 0)}


def replayed_since(status: dict, before: dict) -> int:
    """Datagrams dropped as replays or duplicates since `before`: what a resent recording counts as."""
    since = dropped_since(status, before)
    return since.get("replay", 0) + since.get("duplicate", 0)


def counted_all(status: dict, before: dict, sent: int) -> dict | None:
    """`status` once it counts at least `sent` more replays or duplicates than `before` (the last resent
    datagram may still be on its way when the resender returns), else None."""
    return status if replayed_since(status, before) >= sent else None


@pytest.mark.parametrize("between", [
    "nothing", "survivor_restarted", "survivor_reloaded", "node_restarted",
    pytest.param("minutes", marks=pytest.mark.slow),     # `make soak`: the recording is 2 minutes old
])
def test_replayed_recording_after_power_loss_neither_delays_takeover_nor_revives_the_node(
        replay_lab: Lab, tmp_path: Path, between: str) -> None:
    lab = replay_lab
    for host in lab.hosts.values():
        host.path("/var/log/failback-calls.log").unlink(missing_ok=True)
    with running_pair(lab, REPLAY_TIMERS) as p:
        s1, s2 = p.host("server1"), p.host("server2")
        a1, a2 = p.agents["server1"], p.agents["server2"]
        recording = record(s2, s1, RECORD_S, tmp_path)
        generation = a2.status()["peer"]["generation"]
        assert len(recording) >= RECORD_S / REPLAY_TIMERS.keepalive_s - 2, f"{len(recording)} datagrams recorded"
        assert any(b"NS_ackmsg" in d for d in recording), "the recording holds seq-less acks too"
        if between == "survivor_restarted":
            a2.stop()
            a2.start()
            wait_until(lambda: a2.status()["peer"]["state"] == "active", 5, "server2 to hear server1 again")
        elif between == "survivor_reloaded":
            a2.cli("reload")
        elif between == "minutes":
            time.sleep(OLD_RECORDING_S)           # the recording's age is the point, not a settle wait
        elif between == "node_restarted":
            a1.stop()
            a1.start()
            wait_until(lambda: a2.status()["peer"]["generation"] > generation, 5, "server1's new generation")
            p.settle("server1", time.monotonic(), timeout=5)
        p.stable()
        before, log_before = a2.status(), len(a2.ha_log())
        takeover: list[float] = []

        def watch_takeover() -> bool:
            if not takeover and p.holders() == {"server2"}:
                takeover.append(time.monotonic() - t0)
            return bool(takeover)

        watcher = threading.Thread(target=wait_until, args=(watch_takeover, p.deadline + 5, "the takeover"),
                                   kwargs={"interval": 0.01}, daemon=True)
        t0 = time.monotonic()
        p.crash("server1", power=True)
        try:
            watcher.start()
            sent = resend(lab, recording, s1, s2, tmp_path)
            watcher.join(10)
            try:
                after = wait_until(lambda: counted_all(a2.status(), before, sent), 5,
                                   f"server2 to count the {sent} resent datagrams")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: dropped since {dropped_since(a2.status(), before)}") from None
        finally:
            s1.power_on()
        log = a2.ha_log()[log_before:]
        assert takeover and takeover[0] <= p.deadline, f"takeover after {takeover} s"
        assert p.holders() == {"server2"} and p.watch.max_holders(t0) == 1
        assert after["peer"]["state"] == "dead"
        assert "returning after partition" not in log
        counted = dropped_since(after, before)
        assert replayed_since(after, before) == sent, (counted, sent)
        assert counted.get("replay", 0) > 0, counted
        replay_lines = log.count("attempted replay attack")
        assert 0 < replay_lines <= 5 + 1, f"{replay_lines} replay lines: the log is not rate-limited"
        print(f"REPLAY | {between} | recorded {len(recording)} | sent {sent} | counted {counted} | "
              f"takeover {takeover[0]:.3f} s (deadline {p.deadline:.1f} s) | replay log lines {replay_lines}")
