"""ARP frames on the wire: the gratuitous ARP burst, as Heartbeat's `send_arp` sends it after taking a
VIP, and the RFC 5227 probe `hbvip check-config` uses to ask whether another machine claims a VIP.

Clients and switches keep the old holder's MAC for the VIP until something tells them otherwise;
the burst is that something. Frames are built here with `struct` and sent on an AF_PACKET socket, so
no arping binary or libnet is needed. Like Heartbeat, the frames alternate an ARP request
("who-has VIP tell VIP", target MAC zero) and an ARP reply ("VIP is-at MAC", target MAC = own MAC),
both to the Ethernet broadcast address: some stacks update their cache only on one of the two.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence

ETH_P_ARP = 0x0806
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
ZERO_IP = b"\0" * 4
#: RFC 5227 sends 3 probes 1-2 s apart; operators run check-config interactively, so shorter: 3 probes
#: 150 ms apart and 400 ms more for late answers. A machine that holds the address answers at once.
PROBE_COUNT, PROBE_INTERVAL, PROBE_WAIT = 3, 0.15, 0.4


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
    return await send_burst(iface, lambda mac: (arp_frame(mac, ip, ARPOP_REQUEST), arp_frame(mac, ip, ARPOP_REPLY)),
                            count=count, interval=interval)


async def send_burst(iface: str, frames_for: Callable[[bytes], Sequence[bytes]], *, count: int,
                     interval: float) -> int:
    """The announcement loop shared by ARP and IPv6 neighbour advertisements: `count` frames, cycling
    through `frames_for(own MAC)`, the first at once and then one every `interval` s (see `send_garp`)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only, receive nothing
    try:
        sock.bind((iface, 0))
        frames = frames_for(sock.getsockname()[4])
        sock.setblocking(False)
        sent = 0
        for n in range(count):
            if n:
                await asyncio.sleep(interval)
            try:
                sock.send(frames[n % len(frames)])
                sent += 1
            except OSError:
                pass
        return sent
    finally:
        sock.close()


def probe_frame(mac: bytes, target_ip: str) -> bytes:
    """RFC 5227 ARP probe: who-has target, sender IP 0.0.0.0 so no cache anywhere learns from it."""
    ethernet = struct.pack("!6s6sH", BROADCAST_MAC, mac, ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", ARPHRD_ETHER, 0x0800, 6, 4, ARPOP_REQUEST, mac, ZERO_IP, ZERO_MAC,
                      socket.inet_aton(target_ip))
    return ethernet + arp


def arp_probe(iface: str, ip: str, *, count: int = PROBE_COUNT, interval: float = PROBE_INTERVAL,
              wait: float = PROBE_WAIT) -> set[str]:
    """MACs of machines that claim `ip` on `iface`: they answer our probe, or announce/probe it too."""
    target = socket.inet_aton(ip)

    def claimant(data: bytes, mac: bytes) -> str | None:
        if len(data) < 42:
            return None
        op, smac, sip, _tmac, tip = struct.unpack("!6xH6s4s6s4s", data[14:42])
        if smac != mac and (sip == target or (op == ARPOP_REQUEST and sip == ZERO_IP and tip == target)):
            return smac.hex(":")
        return None

    return probe_claimants(iface, ETH_P_ARP, lambda mac: probe_frame(mac, ip), claimant,
                           count=count, interval=interval, wait=wait)


def probe_claimants(iface: str, ethertype: int, frame_for: Callable[[bytes], bytes],
                    claimant: Callable[[bytes, bytes], str | None], *, count: int, interval: float,
                    wait: float) -> set[str]:
    """Send `count` probes `interval` apart and listen `wait` after the last: the MACs that `claimant`
    (frame received, our MAC) finds claiming the address. One loop for the ARP and the IPv6 probe."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    try:
        sock.bind((iface, ethertype))
        mac = sock.getsockname()[4]
        frame = frame_for(mac)
        claimants: set[str] = set()
        sent, next_send = 0, time.monotonic()
        end = next_send + (count - 1) * interval + wait
        while (now := time.monotonic()) < end:
            if sent < count and now >= next_send:
                sock.send(frame)
                sent, next_send = sent + 1, next_send + interval
            timeout = max(0.0, min(end, next_send if sent < count else end) - now)
            if not select.select([sock], [], [], timeout)[0]:
                continue
            data, meta = sock.recvfrom(2048)
            if meta[2] != socket.PACKET_OUTGOING and (who := claimant(data, mac)) is not None:
                claimants.add(who)
        return claimants
    finally:
        sock.close()
