"""A snapshot of the host's addresses (IPv4, or both families), read over netlink.

VIP placement (which interface, which `eth0:N` label is free) and the transport (which `ucast`
addresses are this node's own) both need the same view of the host, so it is read in one place.

The addresses come from one RTM_GETADDR dump on a netlink socket of its own; interface names from the
C library's `if_nameindex`/`if_nametoindex`, instead of a link dump whose message class (`ifinfmsg`)
would import all of pyroute2's link-kind plugins.

Written by hand here is what pyroute2's `IPRoute.get_addr()` does (one request, the replies split and
their four attributes read): the transport needs the host's addresses before the first heartbeat, and
importing pyroute2 cost about a tenth of the agent's CPU from launch to that heartbeat. The dump is
synchronous: the kernel builds it while we read, so it never waits on the network, and the transport
reads it before the event loop exists. pyroute2 stays the grammar of what changes addresses (`vip`).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct

from hbvip.net.nlraw import (
    DUMP_TRIES, ERRNO, HEADER, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, RECV_SIZE,
    DumpInterrupted, RtnlError, attributes, split_messages,
)
from hbvip.records import dataclass

# <linux/rtnetlink.h>, <linux/if_addr.h>
RTM_NEWADDR, RTM_GETADDR = 20, 22
IFADDRMSG = struct.Struct("=BBBBI")  # struct ifaddrmsg: family, prefix length, flags, scope, interface index
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST = 1, 2, 3, 4
_ADDRESS_SIZE = {socket.AF_INET: 4, socket.AF_INET6: 16}
#: How long the kernel may take to answer (it answers at once; this only bounds a wedged socket).
DUMP_TIMEOUT = 5.0


@dataclass(frozen=True)
class IfAddr:
    """One address as the kernel reports it (what `ip addr` shows); IPv6 ones carry the interface as label."""

    ifname: str
    index: int
    address: str
    prefix: int
    label: str
    broadcast: str | None

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_interface(f"{self.address}/{self.prefix}").network

    @property
    def version(self) -> int:
        return 6 if ":" in self.address else 4


async def ipv4_addresses() -> list[IfAddr]:
    """Every IPv4 address of the current network namespace."""
    return addresses_now(socket.AF_INET, "list IPv4 addresses")


async def all_addresses() -> list[IfAddr]:
    """Every IPv4 and IPv6 address of the current network namespace, in one dump (VIPs of both kinds)."""
    return addresses_now()


def addresses_now(family: int = socket.AF_UNSPEC, what: str = "list addresses") -> list[IfAddr]:
    """The addresses of `family` (AF_UNSPEC: both), asked again when they changed during the dump."""
    for attempt in range(1, DUMP_TRIES + 1):
        try:
            return _dump(family, what)
        except DumpInterrupted:
            if attempt == DUMP_TRIES:
                raise
    raise AssertionError("unreachable")


def _dump(family: int, what: str) -> list[IfAddr]:
    records: list[tuple[int, int, int, dict[int, bytes]]] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(DUMP_TIMEOUT)
        sock.bind((0, 0))
        request = IFADDRMSG.pack(family, 0, 0, 0, 0)
        sock.send(HEADER.pack(HEADER.size + len(request), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + request)
        interrupted = done = False
        while not done:
            for msg_type, flags, _seq, raw in split_messages(sock.recv(RECV_SIZE)):
                interrupted |= bool(flags & NLM_F_DUMP_INTR)
                if msg_type == NLMSG_ERROR and (code := -ERRNO.unpack_from(raw, HEADER.size)[0]):
                    raise RtnlError(code, f"{what}: {os.strerror(code)}")
                done = msg_type in (NLMSG_DONE, NLMSG_ERROR)
                if msg_type == RTM_NEWADDR:
                    msg_family, prefix, _flags, _scope, index = IFADDRMSG.unpack_from(raw, HEADER.size)
                    if msg_family in _ADDRESS_SIZE:
                        records.append((msg_family, prefix, index, attributes(raw, HEADER.size + IFADDRMSG.size)))
    if interrupted:
        raise DumpInterrupted(errno.EINTR, f"{what}: addresses changed during the dump")
    names = dict(socket.if_nameindex())
    return [_ifaddr(family, prefix, index, attrs, names) for family, prefix, index, attrs in records]


def _ifaddr(family: int, prefix: int, index: int, attrs: dict[int, bytes], names: dict[int, str]) -> IfAddr:
    def address(kind: int) -> str | None:
        value = attrs.get(kind)
        return socket.inet_ntop(family, value) if value and len(value) == _ADDRESS_SIZE[family] else None

    ifname = names.get(index, str(index))
    label = attrs.get(IFA_LABEL, b"").split(b"\0", 1)[0].decode(errors="replace")
    return IfAddr(ifname=ifname, index=index, address=address(IFA_LOCAL) or address(IFA_ADDRESS) or "",
                  prefix=prefix, label=label or ifname, broadcast=address(IFA_BROADCAST))


def interface_index(ifname: str) -> int | None:
    """The index of interface `ifname`, or None when there is no such interface."""
    try:
        return socket.if_nametoindex(ifname)
    except (OSError, ValueError):  # no such interface; ValueError: a name with a NUL byte
        return None
