"""ICMP echo by hand (raw socket, stdlib only): is a host up, whatever happens to our heartbeats?

Two jobs need it: Heartbeat's `ping` nodes (a node that reaches none of them is the one cut off) and the
diagnosis "peer alive but heartbeats lost": when the peer's heartbeats stop but it still answers ping on
its fixed address, the usual cause is a firewall dropping UDP 694, not a dead machine. A raw socket needs
CAP_NET_RAW, which the agent has anyway for gratuitous ARP; no `ping` binary is spawned.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time

ECHO_REQUEST = 8
ECHO_REPLY = 0
ECHO6_REQUEST, ECHO6_REPLY = 128, 129  # ICMPv6 (ha.cf `ping6`); the kernel fills in their checksum
_HEADER = struct.Struct("!BBHHH")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's-complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = b"hbvip") -> bytes:
    body = _HEADER.pack(ECHO_REQUEST, 0, 0, ident, seq) + payload
    return _HEADER.pack(ECHO_REQUEST, 0, checksum(body), ident, seq) + payload


def is_reply_to(packet: bytes, ident: int, seq: int, *, v6: bool = False) -> bool:
    """`packet` is what a raw socket hands us: IPv4's with the IP header first, then the ICMP message;
    ICMPv6's without the IPv6 header."""
    if v6:
        icmp = packet[:_HEADER.size]
        return len(icmp) == _HEADER.size and _HEADER.unpack(icmp)[0] == ECHO6_REPLY and \
            _HEADER.unpack(icmp)[3:] == (ident, seq)
    if len(packet) < 20:
        return False
    ihl = (packet[0] & 0x0F) * 4
    icmp = packet[ihl:ihl + _HEADER.size]
    if len(icmp) < _HEADER.size:
        return False
    kind, _code, _sum, r_ident, r_seq = _HEADER.unpack(icmp)
    return kind == ECHO_REPLY and r_ident == ident and r_seq == seq


async def ping(address: str, timeout: float = 1.0, *, tries: int = 2) -> bool:
    """True when `address` answers one of `tries` echo requests within `timeout` seconds each.

    Never raises for network trouble: an unreachable or unroutable address is simply not alive. Without
    CAP_NET_RAW it raises PermissionError, so a missing capability is not mistaken for a dead host.
    """
    loop = asyncio.get_running_loop()
    ident = (os.getpid() ^ id(loop)) & 0xFFFF
    v6 = ":" in address
    family, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
    try:
        target = (await loop.getaddrinfo(address, None, family=family, type=socket.SOCK_RAW))[0][4][0]
    except (OSError, IndexError):
        return False
    with socket.socket(family, socket.SOCK_RAW, proto) as sock:
        sock.setblocking(False)
        for seq in range(1, tries + 1):
            request = _HEADER.pack(ECHO6_REQUEST, 0, 0, ident, seq) + b"hbvip" if v6 else echo_request(ident, seq)
            try:
                await loop.sock_sendto(sock, request, (target, 0))
            except OSError:
                return False
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    packet, source = await asyncio.wait_for(loop.sock_recvfrom(sock, 1500), left)
                except asyncio.TimeoutError:
                    break
                # Every raw ICMP socket sees every reply, and concurrent pings of this process share
                # `ident`: only the target's own answer counts (ping nodes and the peer are probed together).
                if source[0] == target and is_reply_to(packet, ident, seq, v6=v6):
                    return True
    return False
