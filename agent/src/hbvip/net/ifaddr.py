"""A snapshot of the host's IPv4 addresses, read over netlink.

VIP placement (which interface, which `eth0:N` label is free) and the transport (which `ucast`
addresses are this node's own) both need the same view of the host, so it is read in one place.

pyroute2's `AsyncIPRoute` is used directly: in pyroute2 0.9.x it is native asyncio and a dump costs
the same as a blocking `IPRoute` call pushed to a thread (about 3 ms each, measured), without tying up
a worker thread or needing locking around a shared socket. A fresh netlink socket per call keeps the
code free of connection state; these calls happen at start-up and on failover only.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from pyroute2 import AsyncIPRoute


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
    async with AsyncIPRoute() as ipr:
        names = {link["index"]: link.get("IFLA_IFNAME") async for link in await ipr.link("dump")}
        result = []
        async for msg in await ipr.addr("dump", family=socket.AF_INET):
            index = msg["index"]
            address = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
            result.append(
                IfAddr(
                    ifname=names.get(index, str(index)),
                    index=index,
                    address=address,
                    prefix=msg["prefixlen"],
                    label=msg.get("IFA_LABEL") or names.get(index, ""),
                    broadcast=msg.get("IFA_BROADCAST"),
                )
            )
        return result


async def interface_index(ifname: str) -> int | None:
    """The index of interface `ifname`, or None when there is no such interface."""
    async with AsyncIPRoute() as ipr:
        found = await ipr.link_lookup(ifname=ifname)
        return found[0] if found else None
