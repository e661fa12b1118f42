"""Heartbeat media lines as paths: the `Medium` record, and the IPv6 media read as Heartbeat's plugins read
them (`ucast6`, `mcast6` and `ping6`, from Heartbeat 3.0.6's HBcomm/ucast6.so, mcast6.so and ping6.so).

`ucast6 <interface> <peer IPv6 address>` takes one numeric address (the plugin asks getaddrinfo with
AI_NUMERICHOST, so no host names), never multicast, unspecified or loopback; a link-local peer address
gets the interface as its scope (`fe80::2%eth1`), as the plugin does. The datagrams are the same as on
`ucast`: the wire format does not depend on the path.

`mcast6 <interface> <group> <port> <hops> <loop>` takes all five values, as the plugin's parser does. The
group is a multicast address of link-, admin-, site- or organization-local scope (ff02::/16, ff04::,
ff05::, ff08::, the "transient" flag allowed, no other flag), never global and never all-zero after the
scope; hops is 0-4 and loop 0 or 1. The port is the line's own, not `udpport`.
"""

from __future__ import annotations

from collections.abc import Callable

from hbvip.config.lexer import LogicalLine
from hbvip.config.values import ipv6, is_interface_name
from hbvip.records import dataclass

Report = Callable[[int | None, str, str], None]
_UCAST6_FORM = "write 'ucast6 <interface> <peer IPv6 address>', e.g. 'ucast6 eth0 2001:db8::2'"
_MCAST6_FORM = "write 'mcast6 <interface> <group> <port> <hops 0-4> <loop 0|1>', e.g. 'mcast6 eth0 ff12::1:2:3:4 694 1 0'"
#: The scopes mcast6.so accepts: link-, admin-, site- and organization-local (never global).
_MCAST6_SCOPES = frozenset({0x2, 0x4, 0x5, 0x8})


@dataclass(frozen=True)
class Medium:
    """One heartbeat path: ucast/ucast6 to one peer address, bcast on one interface, or one mcast group."""

    kind: str
    interface: str
    address: str | None
    line: int
    port: int | None = None
    """mcast/mcast6: the line's own port (None: `udpport`)."""
    ttl: int = 1
    loop: int = 0

    def label(self, udpport: int) -> str:
        """How `hbvip status` names the path: `ucast eth0 10.99.0.2`, `bcast eth0`, `mcast eth0
        239.0.0.1:694`, `mcast6 eth0 [ff12::1]:694` (a group with its port: the line's own, else udpport)."""
        if self.address is None:
            return f"{self.kind} {self.interface}"
        if not self.kind.startswith("mcast"):
            return f"{self.kind} {self.interface} {self.address}"
        group = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.kind} {self.interface} {group}:{self.port or udpport}"


def ping6_nodes(ll: LogicalLine, error: Report) -> list[str]:
    """The ping nodes of one `ping6` line (Heartbeat's HBcomm/ping6.so): numeric IPv6 addresses that
    join the `ping` nodes, so the same tiebreaker rules apply whichever family answers."""
    if len(ll.words) < 2:
        error(ll.line, "ping6 needs at least one address", "write 'ping6 <IPv6 address of a router>'")
    nodes = []
    for text in ll.words[1:]:
        address = ipv6(text)
        if address is None or address.is_multicast or address.is_unspecified or address.is_link_local:
            error(ll.line, f"ping6 node {text!r} is not a global or unique-local IPv6 address",
                  "give the IPv6 address of a stable neighbour such as the default gateway")
        else:
            nodes.append(str(address))
    return nodes


def ucast6_media(ll: LogicalLine, error: Report) -> list[Medium]:
    """The path of one `ucast6` line, or none (with the problem reported at the line)."""
    if len(ll.words) != 3:
        error(ll.line, f"ucast6 takes an interface and one peer address, got {len(ll.words) - 1} values",
              _UCAST6_FORM)
        return []
    iface, text = ll.words[1], ll.words[2]
    if not is_interface_name(iface):
        error(ll.line, f"ucast6 interface {iface!r} is not a valid interface name", "give a network interface such as eth0")
        return []
    address, _sep, scope = text.partition("%")
    peer = ipv6(address)
    if peer is None or peer.is_multicast or peer.is_unspecified or peer.is_loopback:
        error(ll.line, f"ucast6 peer {text!r} is not a unicast IPv6 address (Heartbeat's ucast6 takes no host names)",
              _UCAST6_FORM)
        return []
    if scope and scope != iface:
        error(ll.line, f"ucast6 peer {text!r}: scope {scope} is not the line's interface {iface}",
              f"write {address}%{iface} or leave the scope out")
        return []
    return [Medium("ucast6", iface, str(peer), ll.line)]


def mcast6_media(ll: LogicalLine, error: Report) -> list[Medium]:
    """The path of one `mcast6` line, or none (with the problem reported at the line)."""
    args = ll.words[1:]
    if len(args) != 5:
        error(ll.line, f"mcast6 takes 5 values (interface, group, port, hops, loop), got {len(args)}", _MCAST6_FORM)
        return []
    iface, text, port, hops, loop = args
    if not is_interface_name(iface):
        error(ll.line, f"mcast6 interface {iface!r} is not a valid interface name", "give a network interface such as eth0")
        return []
    group = ipv6(text)
    if group is None or not _mcast6_group_ok(group.packed):
        error(ll.line, f"mcast6 group {text!r} is not a link-, admin-, site- or organization-local IPv6 multicast "
                       "group (Heartbeat's mcast6 refuses global and reserved ones)", _MCAST6_FORM)
        return []
    for label, value, low, high in (("port", port, 1, 65535), ("hops", hops, 0, 4), ("loop", loop, 0, 1)):
        if not value.isdigit() or not low <= int(value) <= high:
            error(ll.line, f"mcast6 {label} {value!r} is out of range {low}-{high}", _MCAST6_FORM)
            return []
    return [Medium("mcast6", iface, str(group), ll.line, port=int(port), ttl=int(hops), loop=int(loop))]


def _mcast6_group_ok(packed: bytes) -> bool:
    """mcast6.so's plausibility check: ff, no flag but "transient", an accepted scope, not all zero after."""
    return (packed[0] == 0xFF and packed[1] & 0xE0 == 0 and packed[1] & 0x0F in _MCAST6_SCOPES
            and any(packed[2:]))
