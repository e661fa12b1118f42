"""Quiet heartbeats: the peer's routine heartbeats wait in a socket the loop does not watch, and the
agent reads them on its own next turn; everything else wakes it at once, as before.

Why: an idle agent's CPU is its wake-ups (issue "A lean agent": ~250-340 µs each in the bench's lab,
nearly all of it the interpreter on cold caches). A pair that beats in step wakes three times per
keepalive, the node whose timer leads twice: once to send, once for the peer's in-step reply. With the
reply left queued until the next turn, each node wakes once per keepalive, to read and to send.

How: the watched receive socket and a quiet one form a SO_REUSEPORT group on the heartbeat port, and a
classic BPF program attached to the group (SO_ATTACH_REUSEPORT_CBPF) picks the socket per datagram:
the quiet one for a datagram that starts with the stable bytes of the peer's last routine heartbeat or
ack (type, status word, dead time, protocol, config digest, sender and uuid: everything before its
sequence fields), the watched one for every other datagram — a new status word, a request, a
retransmission request, a forgery.
Those stable bytes only say what the peer already said, so reading the datagram up to one keepalive
later changes no decision; the node reads the quiet socket first at every turn and before every
datagram of the watched one, so datagrams are read in arrival order, and each keeps its arrival time
(SO_TIMESTAMPNS), so a peer's death is still noticed deadtime after its last heartbeat, not later.

Only for unicast media: the kernel copies a broadcast or multicast datagram to every socket of a
group, so it would be read twice.
"""

from __future__ import annotations

import array
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence

# <asm-generic/socket.h>; Python's socket module names neither.
SO_ATTACH_REUSEPORT_CBPF = 51
SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35
# <linux/in.h>, <linux/in6.h>: the arrival interface of each datagram, for the per-path liveness
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO, IPV6_PKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49), getattr(socket, "IPV6_PKTINFO", 50)
#: The longest stable start steered: a two-node heartbeat's is under 300 bytes. Three instructions per
#: 4 bytes stay far below the kernel's 4096-instruction limit.
MAX_PREFIX = 1024
_ANC_SIZE = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(16)
# <linux/filter.h>: BPF_LD|BPF_W|BPF_ABS (and H, B), BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JA, BPF_RET|BPF_K.
_LOAD = {4: 0x20, 2: 0x28, 1: 0x30}
_JEQ, _JA, _RET = 0x15, 0x05, 0x06
#: The group's sockets in the order they joined it: the BPF program returns one of these indexes.
WATCHED, QUIET = 0, 1
#: The peer's messages that may wait while their stable start stays the same: its heartbeat (`status`:
#: what changes in it is numbers, time and load) and its acks (`NS_ackmsg`, which only let us forget
#: what we sent). A retransmission request, a resource request or reply never waits.
ROUTINE_TYPES = ("status", "NS_ackmsg")
#: Datagrams read from a lane per turn at most. The routine traffic of one keepalive is one or two; a lane
#: that holds this many is flooded (a replayed recording starts like the peer's heartbeat), and a lane
#: read only once per keepalive would let a flood push the peer's own heartbeats out of its buffer. So the
#: transport then closes its lanes and reads everything at once again, as it copes with any flood, for
#: FLOOD_HOLDOFF seconds.
DRAIN_BATCH = 32
FLOOD_HOLDOFF = 60.0

#: What a drained datagram is handed to: (data, sender, arrival interface index or None, arrival time
#: on the monotonic clock).
Deliver = Callable[[bytes, tuple, "int | None", float], None]


def steering_program(prefixes: Sequence[bytes]) -> bytes:
    """The classic BPF program (packed `struct sock_filter`s) that returns QUIET for a UDP payload that
    starts with one of `prefixes`, else WATCHED. A load past the end of a shorter datagram ends the
    program with 0, WATCHED, too. A comparison that fails jumps to the next prefix's (JA takes 32 bits),
    one that holds skips that jump: no conditional offset exceeds 8 bits."""
    if not prefixes or any(not p or len(p) > MAX_PREFIX for p in prefixes):
        raise ValueError(f"a steered prefix has 1..{MAX_PREFIX} bytes")
    chains = [_chain(p) for p in prefixes]
    code = []
    for i, chain in enumerate(chains):
        last = i == len(chains) - 1
        for n, (width, offset, value) in enumerate(chain):
            # A mismatch: WATCHED after the last prefix, else on to the next one, past the rest of this
            # chain (its remaining loads, compares and jumps, and its RET QUIET).
            fail = (_RET, 0, 0, WATCHED) if last else (_JA, 0, 0, 3 * (len(chain) - n - 1) + 1)
            code += [(_LOAD[width], 0, 0, offset), (_JEQ, 1, 0, value), fail]
        code.append((_RET, 0, 0, QUIET))
    return b"".join(struct.pack("HBBI", *ins) for ins in code)


def _chain(prefix: bytes) -> list[tuple[int, int, int]]:
    """(width, offset, value) of the loads that compare `prefix`: 4 bytes at a time, then 2, then 1."""
    out = []
    offset = 0
    while offset < len(prefix):
        width = next(w for w in (4, 2, 1) if len(prefix) - offset >= w)
        out.append((width, offset, int.from_bytes(prefix[offset:offset + width], "big")))
        offset += width
    return out


def receive_socket(family: socket.AddressFamily, port: int, *, stamps: bool = False) -> socket.socket:
    """A non-blocking UDP socket bound to every address of `family` on `port`, telling each datagram's
    arrival interface (and its arrival time, with `stamps`). SO_REUSEADDR lets another socket share the
    port, as Heartbeat's sockets do; SO_REUSEPORT puts the watched socket and its quiet lane in one group.
    The IPv6 one takes IPv6 only (V6ONLY): IPv4 datagrams arrive once, on the IPv4 socket."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if stamps:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class QuietLane:
    """The quiet socket beside one watched receive socket (same family and port, bound after it).
    `buffer` is the transport's receive buffer: every datagram is copied out of it before delivery."""

    def __init__(self, family: socket.AddressFamily, port: int, buffer: memoryview) -> None:
        self.steered: tuple[bytes, ...] = ()
        self._view = buffer
        self.sock = receive_socket(family, port, stamps=True)

    def steer(self, prefixes: tuple[bytes, ...]) -> None:
        """Send datagrams that start with one of `prefixes` here from now on (replaces the group's program)."""
        program = array.array("B", steering_program(prefixes))
        address, size = program.buffer_info()
        fprog = struct.pack("HP", size // 8, address)     # struct sock_fprog: length, pointer to the code
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
        self.steered = prefixes

    def drain(self, deliver: Deliver, since: float, limit: int = DRAIN_BATCH) -> int:
        """Hand the queued datagrams to `deliver`, oldest first, `limit` at most; returns how many. `since`
        (monotonic) is when the lane was last drained: no datagram here arrived before it."""
        count = 0
        while count < limit:
            try:
                size, ancillary, _flags, addr = self.sock.recvmsg_into([self._view], _ANC_SIZE)
            except OSError:     # EAGAIN: drained; anything else: the watched socket reports it
                return count
            index, stamp = arrival_fields(ancillary)
            deliver(bytes(self._view[:size]), addr, index, _arrival(stamp, since))
            count += 1
        return count

    def close(self) -> None:
        self.sock.close()


def arrival_fields(ancillary: list[tuple[int, int, bytes]]) -> tuple[int | None, int | None]:
    """(arrival interface index, arrival time in ns on the real-time clock) from IP(V6)_PKTINFO and
    SCM_TIMESTAMPNS; None for what is missing."""
    index = stamp = None
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 4:
            index = int.from_bytes(data[:4], sys.byteorder)
        elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(data) >= 20:
            index = int.from_bytes(data[16:20], sys.byteorder)
        elif level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            stamp = sec * 1_000_000_000 + nsec
    return index, stamp


def _arrival(stamp_ns: int | None, since: float) -> float:
    """The kernel's arrival stamp (real-time clock) on the monotonic clock the agent decides by: now,
    less how long ago the datagram arrived, kept between `since` and now, so a step of the real-time
    clock can neither age a heartbeat (and kill the peer) nor date it in the future."""
    now = time.monotonic()
    if stamp_ns is None:
        return now
    return min(now, max(since, now - (time.time_ns() - stamp_ns) / 1e9))
