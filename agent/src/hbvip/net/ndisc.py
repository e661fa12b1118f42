"""IPv6 neighbour discovery frames: the unsolicited neighbour advertisement burst that moves an IPv6 VIP
(the IPv6 counterpart of the gratuitous ARP burst), and the neighbour solicitation `hbvip check-config`
sends to ask whether another machine already answers for a VIP.

A client keeps the old holder's MAC for the VIP in its neighbour cache; an advertisement with the
override flag (RFC 4861 7.2.6) replaces it at once, as keepalived and IPv6addr's `send_ua` do. It goes
to all nodes (ff02::1) with hop limit 255 (receivers drop anything less, RFC 4861 7.1.2) and carries
the target link-layer address option. Frames are built with `struct` and sent on an AF_PACKET socket
through the same burst loop as the ARP frames, so no raw ICMPv6 socket or source address is needed.
"""

from __future__ import annotations

import socket
import struct

from hbvip.net.garp import PROBE_COUNT, PROBE_INTERVAL, PROBE_WAIT, probe_claimants, send_burst
from hbvip.net.icmp import checksum

ETH_P_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT = 135, 136
NA_FLAG_OVERRIDE = 0x20000000
OPT_SOURCE_LLADDR, OPT_TARGET_LLADDR = 1, 2
HOP_LIMIT = 255
ALL_NODES = "ff02::1"
UNSPECIFIED = "::"


def multicast_mac(group: bytes) -> bytes:
    """The Ethernet address of an IPv6 multicast group: 33:33 and the group's last four bytes."""
    return b"\x33\x33" + group[-4:]


def solicited_node(address: bytes) -> bytes:
    """ff02::1:ffXX:XXXX, the group a node holding `address` listens on."""
    return socket.inet_pton(socket.AF_INET6, "ff02::1:ff00:0")[:13] + address[-3:]


def icmpv6_checksum(src: bytes, dst: bytes, message: bytes) -> int:
    """RFC 4443 2.3: the one's complement sum over the pseudo-header and the message."""
    return checksum(src + dst + struct.pack("!I3xB", len(message), IPPROTO_ICMPV6) + message)


def _frame(mac: bytes, src: bytes, dst: bytes, eth_dst: bytes, body: bytes) -> bytes:
    """Ethernet + IPv6 header (hop limit 255) + ICMPv6 `body` with its checksum filled in."""
    checksum = icmpv6_checksum(src, dst, body)
    body = body[:2] + struct.pack("!H", checksum) + body[4:]
    ipv6 = struct.pack("!IHBB16s16s", 6 << 28, len(body), IPPROTO_ICMPV6, HOP_LIMIT, src, dst)
    return struct.pack("!6s6sH", eth_dst, mac, ETH_P_IPV6) + ipv6 + body


def na_frame(mac: bytes, ip: str) -> bytes:
    """One 86-byte unsolicited neighbour advertisement: `ip` is at `mac`, override, to all nodes."""
    target, all_nodes = socket.inet_pton(socket.AF_INET6, ip), socket.inet_pton(socket.AF_INET6, ALL_NODES)
    body = struct.pack("!BBHI16sBB6s", ND_NEIGHBOR_ADVERT, 0, 0, NA_FLAG_OVERRIDE, target, OPT_TARGET_LLADDR, 1, mac)
    return _frame(mac, target, all_nodes, multicast_mac(all_nodes), body)


async def send_unsolicited_na(iface: str, ip: str, *, count: int = 5, interval: float = 0.2) -> int:
    """Send `count` advertisements for `ip` on `iface`, as `send_garp` sends ARP; return frames sent."""
    return await send_burst(iface, lambda mac: (na_frame(mac, ip),), count=count, interval=interval)


def ns_probe_frame(mac: bytes, target_ip: str) -> bytes:
    """A duplicate-address-detection style solicitation (RFC 4862 5.4.2): from ::, to the target's
    solicited-node group, no source link-layer option, so no cache anywhere learns from it."""
    target = socket.inet_pton(socket.AF_INET6, target_ip)
    group = solicited_node(target)
    body = struct.pack("!BBHI16s", ND_NEIGHBOR_SOLICIT, 0, 0, 0, target)
    return _frame(mac, bytes(16), group, multicast_mac(group), body)


def neighbour_probe(iface: str, ip: str, *, count: int = PROBE_COUNT, interval: float = PROBE_INTERVAL,
                    wait: float = PROBE_WAIT) -> set[str]:
    """MACs of machines that claim `ip` on `iface`: they answer our solicitation with an advertisement
    for it, or probe it themselves (the ARP probe's rules, `garp.arp_probe`, in IPv6)."""
    target = socket.inet_pton(socket.AF_INET6, ip)

    def claimant(data: bytes, mac: bytes) -> str | None:
        return data[6:12].hex(":") if data[6:12] != mac and _claims(data, target) else None

    return probe_claimants(iface, ETH_P_IPV6, lambda mac: ns_probe_frame(mac, ip), claimant,
                           count=count, interval=interval, wait=wait)


def _claims(frame: bytes, target: bytes) -> bool:
    """An advertisement for `target`, or another node's DAD solicitation for it (from ::)."""
    if len(frame) < 78 or frame[20] != IPPROTO_ICMPV6 or frame[62:78] != target:
        return False
    kind, source = frame[54], frame[22:38]
    return kind == ND_NEIGHBOR_ADVERT or (kind == ND_NEIGHBOR_SOLICIT and source == bytes(16))
