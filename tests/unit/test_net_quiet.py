"""Quiet lanes (hbvip.net.quiet) on real sockets over loopback: the kernel leaves the peer's routine
heartbeats queued for the next turn, wakes the loop for anything else, and the transport still hands
every datagram over in arrival order, each with when it arrived."""
from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from hbvip.net.quiet import MAX_PREFIX, steering_program
from hbvip.net.transport import Transport

ROUTINE = b"###\n11:(0)t=status,12:(0)st=active,14:(0)src=server1,"
STABLE = ROUTINE                 # the stable start the node steers by


def _free_port() -> int:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


class _Recorder:
    """The node's side: what arrived, in order, with the transport's arrival time (None: just now)."""

    def __init__(self) -> None:
        self.transport: Transport | None = None
        self.got: list[tuple[bytes, float | None]] = []

    def __call__(self, data: bytes, addr: tuple) -> None:
        assert self.transport is not None
        self.got.append((data, self.transport.arrival_time))


@pytest.fixture(name="pair")
def _pair() -> Iterator[tuple[Transport, _Recorder, socket.socket]]:
    recorder = _Recorder()
    transport = Transport(_free_port(), [("127.0.0.1", None)], recorder)   # our own address: a receiver only
    recorder.transport = transport
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    transport.open()
    try:
        yield transport, recorder, sender
    finally:
        transport.close()
        sender.close()


def _watched_is_readable(transport: Transport, timeout: float = 0.05) -> bool:
    import select  # pylint: disable=import-outside-toplevel
    readable, _w, _x = select.select(transport._receivers, [], [], timeout)  # pylint: disable=protected-access
    return bool(readable)


def test_routine_heartbeats_wait_for_the_turn_and_keep_their_arrival_time(pair) -> None:
    transport, recorder, sender = pair
    assert transport.steer("status", STABLE)
    time.sleep(0.05)    # the kernel turns arrival stamps on in a work item of its own, just after the first socket asks
    sent_at = time.monotonic()
    for seq in range(3):
        sender.sendto(ROUTINE + b"8:(0)seq=%d," % seq, ("127.0.0.1", transport.port))
    assert not _watched_is_readable(transport), "a routine heartbeat woke the loop"
    time.sleep(0.05)               # they wait: the turn comes later
    transport.drain_quiet()
    assert [d[len(ROUTINE):] for d, _at in recorder.got] == [b"8:(0)seq=0,", b"8:(0)seq=1,", b"8:(0)seq=2,"]
    for _data, at in recorder.got:
        assert at is not None and sent_at <= at <= sent_at + 0.04, (sent_at, at)
    assert transport.arrival_time is None


def test_anything_else_wakes_the_loop_after_what_waited(pair) -> None:
    transport, recorder, sender = pair
    assert transport.steer("status", STABLE)
    changed = ROUTINE.replace(b"st=active", b"st=standb")    # a new status word: same length, other bytes
    sender.sendto(ROUTINE + b"x", ("127.0.0.1", transport.port))
    for other in (changed, b"###\n14:(0)t=NS_ackmsg,", ROUTINE[:20], b"garbage"):
        sender.sendto(other, ("127.0.0.1", transport.port))
    assert _watched_is_readable(transport)

    async def read() -> None:
        transport.listen(asyncio.get_running_loop())
        while len(recorder.got) < 5:
            await asyncio.sleep(0.005)
    asyncio.run(asyncio.wait_for(read(), 5))
    assert [d for d, _at in recorder.got] == [ROUTINE + b"x", changed, b"###\n14:(0)t=NS_ackmsg,", ROUTINE[:20], b"garbage"]
    assert recorder.got[0][1] is not None and all(at is None for _d, at in recorder.got[1:])


def test_a_reload_that_opens_the_port_again_keeps_the_lanes_apart(pair) -> None:
    """A reload opens the new transport before the old one closes (both in one SO_REUSEPORT group): once
    the old one is gone, the new one steers with its own lane as the quiet one."""
    old, _recorder, sender = pair
    assert old.steer("status", STABLE)
    recorder = _Recorder()
    new = Transport(old.port, [("127.0.0.1", None)], recorder)
    recorder.transport = new
    new.open()
    try:
        old.close()
        sender.sendto(ROUTINE + b"before", ("127.0.0.1", new.port))
        assert _watched_is_readable(new), "with no quiet lane yet, everything is read at once"
        new._read_ready(new._receivers[0])  # pylint: disable=protected-access
        assert new.steer("status", STABLE)
        sender.sendto(ROUTINE + b"after", ("127.0.0.1", new.port))
        sender.sendto(b"###\nother", ("127.0.0.1", new.port))
        time.sleep(0.02)
        new._read_ready(new._receivers[0])  # pylint: disable=protected-access
        assert [(d, at is not None) for d, at in recorder.got] == \
            [(ROUTINE + b"before", False), (ROUTINE + b"after", True), (b"###\nother", False)]
    finally:
        new.close()


def test_broadcast_media_never_steer() -> None:
    """The kernel copies a broadcast datagram to every socket of the group: it would be read twice."""
    transport = Transport(_free_port(), [], lambda data, addr: None, broadcast_interfaces=["lo"])
    assert not transport.steer("status", STABLE)


def test_the_program_compares_every_byte_of_the_prefix_and_no_more() -> None:
    program = steering_program([b"###\n1"])     # 4 + 1 bytes: two loads, two compares, two fails, one accept
    assert len(program) == 8 * 7
    with pytest.raises(ValueError):
        steering_program([b""])
    with pytest.raises(ValueError):
        steering_program([b"x" * (MAX_PREFIX + 1)])


def test_the_peer_s_acks_wait_too_and_a_new_start_replaces_only_its_own_kind(pair) -> None:
    transport, recorder, sender = pair
    ack = b"###\n14:(0)t=NS_ackmsg,15:(0)dest=server2,"
    assert transport.steer("status", STABLE) and transport.steer("NS_ackmsg", ack)
    standby = STABLE.replace(b"st=active", b"st=standb")
    assert transport.steer("status", standby)         # the heartbeat's new start: the ack's stays
    for data in (standby + b"1", ack + b"2", STABLE + b"3", ack[:-3] + b"ZZ," + b"4"):
        sender.sendto(data, ("127.0.0.1", transport.port))
    time.sleep(0.02)
    transport.drain_quiet()
    assert [d for d, _at in recorder.got] == [standby + b"1", ack + b"2"]
    assert _watched_is_readable(transport)               # the old start and another ack are read at once
