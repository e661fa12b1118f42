"""Socket options of Heartbeat's `mcast`/`mcast6` media: leave by one interface with a hop limit and a
loopback choice, and join the group on that interface to hear it (as HBcomm/mcast.so and mcast6.so do).
"""

from __future__ import annotations

import ipaddress
import socket
import struct

# <linux/in.h>: struct ip_mreqn {imr_multiaddr, imr_address, imr_ifindex}, which IP_MULTICAST_IF and
# IP_ADD_MEMBERSHIP take on Linux; the interface is chosen by index, not by one of its addresses.
_MREQN = struct.Struct("=4s4si")
_ANY4 = bytes(4)


def set_sender(sock: socket.socket, family: socket.AddressFamily, index: int, hops: int, loop: int) -> None:
    """Multicast from `sock` leaves by interface `index` with `hops` (TTL) and comes back to this host
    only with `loop` 1."""
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, loop)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _MREQN.pack(_ANY4, _ANY4, index))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, hops)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, loop)


def join(sock: socket.socket, group: str, index: int) -> None:
    """The host joins `group` on interface `index`; `sock`, bound to the group's port, then receives it."""
    packed = ipaddress.ip_address(group).packed
    if len(packed) == 16:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, packed + struct.pack("@I", index))
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _MREQN.pack(packed, _ANY4, index))
