"""A snapshot of the host's IPv4 addresses, read over netlink.

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
    """One IPv4 address as the kernel reports it (what `ip -4 addr` shows)."""

    ifname: str
    index: int
    address: str
    prefix: int
    label: str
    broadcast: str | None

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Interface(f"{self.address}/{self.prefix}").network


async def ipv4_addresses() -> list[IfAddr]:
    """Every IPv4 address of the current network namespace."""
    request = ifaddrmsg()
    request["family"] = socket.AF_INET
    records = await session().dump(request, RTM_GETADDR, "list IPv4 addresses")
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
