"""Link state over netlink, for `track_interface`, and which interfaces a group's VIPs are on.

One RTM_GETLINK request for one interface on the agent's netlink session: the answer's flags say
whether the link is administratively up (IFF_UP) and has carrier (IFF_LOWER_UP), as `ip link` shows
`UP,LOWER_UP`. A link that is missing counts as down.
"""

from __future__ import annotations

from collections.abc import Iterable

from hbvip.config.haresources import ResourceGroup
from hbvip.net.ifaddr import interface_index, ipv4_addresses
from hbvip.net.pyroute2_lean import RTM_GETLINK, linkmsg
from hbvip.net.rtnl import RtnlError, session
from hbvip.net.vip import subnets_holding

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


async def link_up(ifname: str) -> bool:
    """True when `ifname` exists, is set up and has carrier."""
    index = interface_index(ifname)
    if index is None:
        return False
    request = linkmsg()
    request["index"] = index
    try:
        records = await session().request(request, RTM_GETLINK, 0, f"read link {ifname}")
    except RtnlError:
        return False
    flags = records[0]["flags"] if records else 0
    return bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP)


async def vip_interfaces(groups: Iterable[ResourceGroup]) -> dict[str, frozenset[str]]:
    """Group key -> the interfaces its VIPs go on: the named one, else the one whose subnet holds it."""
    addresses = await ipv4_addresses()
    out = {}
    for group in groups:
        names = set()
        for vip in group.vips:
            if vip.interface:
                names.add(vip.interface.split(":")[0])
            else:
                names.update(a.ifname for a in subnets_holding(vip, addresses))
        out[group.key] = frozenset(names)
    return out
