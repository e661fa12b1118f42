"""The netlink framing the agent reads without pyroute2: message headers, the errors they carry.

`hbvip.net.rtnl` (the long-lived session, pyroute2's message classes for VIP changes) and the address
dump of `hbvip.net.ifaddr` both split datagrams here. The address dump needs nothing else, so the
agent can read the host's addresses at start, before its first heartbeat, without importing pyroute2
(about a tenth of the start-up's CPU). Numbers are from <linux/netlink.h>.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator

HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence number, port id
ERRNO = struct.Struct("=i")        # struct nlmsgerr starts with the (negative) errno, after the header
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP_INTR, NLM_F_DUMP = 0x1, 0x2, 0x10, 0x300
# The kernel sends a dump in datagrams of at most about 32 KiB; a shorter read would cut one silently.
RECV_SIZE = 65536
DUMP_TRIES = 3  # a dump that raced with a change (NLM_F_DUMP_INTR) is asked again


class RtnlError(OSError):
    """The kernel refused a request (NLMSG_ERROR): `errno` says why, as for a failed system call."""


class DumpInterrupted(RtnlError):
    """The address list changed while the kernel was dumping it; the records may be inconsistent."""


def split_messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, sequence number, whole message) for each netlink message of one datagram."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, msg_type, flags, seq, _port = HEADER.unpack_from(data, offset)
        if length < HEADER.size or offset + length > len(data):
            raise RtnlError(errno.EBADMSG, f"truncated netlink message at byte {offset} of {len(data)}")
        yield msg_type, flags, seq, data[offset:offset + length]
        offset += (length + 3) & ~3  # NLMSG_ALIGN


def attributes(raw: bytes, offset: int) -> dict[int, bytes]:
    """The first value of each attribute type (struct rtattr: length, type, value) from `offset` on."""
    found: dict[int, bytes] = {}
    while offset + 4 <= len(raw):
        length, kind = struct.unpack_from("=HH", raw, offset)
        if length < 4:
            break
        found.setdefault(kind & 0x3FFF, raw[offset + 4:offset + length])  # without NLA_F_NESTED/NET_BYTEORDER
        offset += (length + 3) & ~3
    return found
