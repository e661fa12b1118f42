"""Gratuitous ARP burst, as Heartbeat's `send_arp` sends it after taking a VIP.

Clients and switches keep the old holder's MAC for the VIP until something tells them otherwise;
the burst is that something. Frames are built here with `struct` and sent on an AF_PACKET socket, so
no arping binary or libnet is needed. Like Heartbeat, the frames alternate an ARP request
("who-has VIP tell VIP", target MAC zero) and an ARP reply ("VIP is-at MAC", target MAC = own MAC),
both to the Ethernet broadcast address: some stacks update their cache only on one of the two.
"""

from __future__ import annotations

import asyncio
import socket
import struct

ETH_P_ARP = 0x0806
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6


def arp_frame(mac: bytes, ip: str, op: int) -> bytes:
    """One 42-byte Ethernet+ARP frame announcing that `ip` is at `mac`."""
    ip_bytes = socket.inet_aton(ip)
    target_mac = mac if op == ARPOP_REPLY else ZERO_MAC
    ethernet = struct.pack("!6s6sH", BROADCAST_MAC, mac, ETH_P_ARP)
    arp = struct.pack(
        "!HHBBH6s4s6s4s",
        ARPHRD_ETHER, 0x0800, 6, 4, op, mac, ip_bytes, target_mac, ip_bytes,
    )
    return ethernet + arp


async def send_garp(iface: str, ip: str, *, count: int = 5, interval: float = 0.2) -> int:
    """Send `count` frames on `iface` (first one at once, then every `interval` s); return frames sent.

    Failing to open the socket (no such interface, not root) raises OSError. A frame the kernel
    refuses (interface went down mid-burst) is skipped, which shows as a return value below `count`.
    Cancelling stops the burst; the socket is always closed.
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only, receive nothing
    try:
        sock.bind((iface, 0))
        mac = sock.getsockname()[4]
        sock.setblocking(False)
        frames = (arp_frame(mac, ip, ARPOP_REQUEST), arp_frame(mac, ip, ARPOP_REPLY))
        sent = 0
        for n in range(count):
            if n:
                await asyncio.sleep(interval)
            try:
                sock.send(frames[n % 2])
                sent += 1
            except OSError:
                pass
        return sent
    finally:
        sock.close()
