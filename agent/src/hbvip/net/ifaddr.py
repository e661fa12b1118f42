"""A snapshot of the host's addresses (IPv4, or both families), read over netlink.

VIP placement (which interface, which `eth0:N` label is free) and the transport (which `ucast`
addresses are this node's own) both need the same view of the host, so it is read in one place.

The addresses come from one RTM_GETADDR dump on the agent's netlink session (`rtnl`); interface
names from the C library's `if_nameindex`/`if_nametoindex`, instead of a link dump whose message class
(`ifinfmsg`) would import all of pyroute2's link-kind plugins.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from hbvip.net.pyroute2_lean import RTM_GETADDR, ifaddrmsg
from hbvip.net.rtnl import session


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
    return await _dump(socket.AF_INET, "list IPv4 addresses")


async def all_addresses() -> list[IfAddr]:
    """Every IPv4 and IPv6 address of the current network namespace, in one dump (VIPs of both kinds)."""
    return await _dump(socket.AF_UNSPEC, "list addresses")


async def _dump(family: int, what: str) -> list[IfAddr]:
    request = ifaddrmsg()
    request["family"] = family
    records = await session().dump(request, RTM_GETADDR, what)
    names = dict(socket.if_nameindex())
    result = []
    for msg in records:
        index = msg["index"]
        ifname = names.get(index, str(index))
        result.append(
            IfAddr(
                ifname=ifname,
                index=index,
                address=msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS"),
                prefix=msg["prefixlen"],
                label=msg.get_attr("IFA_LABEL") or ifname,
                broadcast=msg.get_attr("IFA_BROADCAST"),
            )
        )
    return result


def interface_index(ifname: str) -> int | None:
    """The index of interface `ifname`, or None when there is no such interface."""
    try:
        return socket.if_nametoindex(ifname)
    except (OSError, ValueError):  # no such interface; ValueError: a name with a NUL byte
        return None
