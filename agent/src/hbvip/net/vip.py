"""Add and remove a virtual IP the way Heartbeat's IPaddr does, over netlink instead of `ifconfig`.

Heartbeat puts a VIP on an alias label (`eth0:0`, the first free `eth0:N`), picks the interface whose
subnet contains the VIP when the haresources line names none, takes the prefix from that subnet when
none is given, and sets the subnet's broadcast address. Operators read `ip addr`/`ifconfig` output
with those labels in mind, so they are kept.

IPv6 VIPs (IPv6addr, or IPaddr2 with an IPv6 address) follow the same rules of interface and prefix
choice, without label or broadcast (IPv6 has neither), and are added with `nodad`: duplicate address
detection would keep the address tentative (unusable) for a second or more after a takeover, and the
pair itself makes sure only one node holds it.

Each function can take `addresses`, a snapshot from `all_addresses()`: the VIPs of one group then
share one address dump, and an add or delete is one netlink request. The snapshot is kept up to date
with what these functions change, so the next VIP of the group gets the next free label.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable

from hbvip.config import VipSpec
from hbvip.net.ifaddr import IfAddr, all_addresses, interface_index
from hbvip.net.pyroute2_lean import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, RTM_DELADDR, RTM_NEWADDR, ifaddrmsg
from hbvip.net.rtnl import RtnlError, session

# The kernel keeps IFNAMSIZ (16) bytes for a label, the terminating NUL included.
MAX_LABEL = 15
IFA_F_NODAD = 0x02  # <linux/if_addr.h>: usable at once, no duplicate address detection


class VipError(Exception):
    """The VIP cannot be placed: no such interface, no or several matching subnets, netlink refusal."""


async def vip_present(vip: VipSpec, addresses: list[IfAddr] | None = None) -> bool:
    """True when the VIP is configured (on its named interface, or anywhere when none is named)."""
    return bool(_copies(await _snapshot(addresses), vip))


def placed_in(vip: VipSpec, addresses: list[IfAddr]) -> str | None:
    """The interface the VIP is configured on in `addresses`, or None when it is not there."""
    copies = _copies(addresses, vip)
    return copies[0].ifname if copies else None


async def add_vip(vip: VipSpec, addresses: list[IfAddr] | None = None) -> tuple[str, bool]:
    """Configure the VIP; return (label, was_already_present).

    An existing copy is left alone and its label returned, so acquiring twice is harmless. A copy that
    appeared after the snapshot was taken is reported by the kernel (EEXIST) and counts as present too.
    """
    addresses = await _snapshot(addresses)
    existing = _copies(addresses, vip)
    if existing:
        return existing[0].label, True
    ifname, index = _choose_interface(addresses, vip)
    prefix = vip.prefix if vip.prefix is not None else _subnet_prefix(addresses, ifname, vip.address)
    if vip.version == 6:
        label, broadcast = ifname, None
        attrs = [("IFA_ADDRESS", vip.address)]
    else:
        label = free_label(ifname, {a.label for a in addresses if a.ifname == ifname})
        broadcast = vip.broadcast or _default_broadcast(vip.address, prefix)
        attrs = [("IFA_LOCAL", vip.address), ("IFA_ADDRESS", vip.address), ("IFA_LABEL", label)]
        if broadcast:
            attrs.append(("IFA_BROADCAST", broadcast))
    what = f"add {vip.address}/{prefix} on {ifname}"
    try:
        await session().request(_ifaddr(index, prefix, attrs), RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, what)
    except RtnlError as exc:
        if exc.errno == errno.EEXIST:
            return label, True
        raise VipError(f"cannot {exc.strerror}") from exc
    addresses.append(IfAddr(ifname, index, vip.address, prefix, label, broadcast))
    return label, False


async def del_vip(vip: VipSpec, addresses: list[IfAddr] | None = None) -> bool:
    """Remove every copy of the VIP; True if there was one."""
    addresses = await _snapshot(addresses)
    copies = _copies(addresses, vip)
    for copy in copies:
        attrs = [("IFA_ADDRESS", copy.address)] if copy.version == 6 else [("IFA_LOCAL", copy.address), ("IFA_ADDRESS", copy.address)]
        try:
            await session().request(_ifaddr(copy.index, copy.prefix, attrs), RTM_DELADDR, NLM_F_ACK,
                                    f"remove {copy.address} from {copy.ifname}")
        except RtnlError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:  # gone meanwhile is what we wanted
                raise VipError(f"cannot {exc.strerror}") from exc
        addresses.remove(copy)
    return bool(copies)


def free_label(ifname: str, taken: set[str]) -> str:
    """Heartbeat's `<iface>:<n>` with the first free n from 0.

    When the alias would not fit the kernel's 15 characters (long names such as `enp0s31f6-vlan10`),
    the address goes on the interface name itself, which is what `ip addr add` does without a label.
    """
    n = 0
    while f"{ifname}:{n}" in taken:
        n += 1
    label = f"{ifname}:{n}"
    return label if len(label) <= MAX_LABEL else ifname


async def _snapshot(addresses: list[IfAddr] | None) -> list[IfAddr]:
    return await all_addresses() if addresses is None else addresses


def _ifaddr(index: int, prefix: int, attrs: list[tuple[str, str]]) -> ifaddrmsg:
    msg = ifaddrmsg()
    v6 = ":" in attrs[0][1]
    msg["family"], msg["prefixlen"], msg["index"] = socket.AF_INET6 if v6 else socket.AF_INET, prefix, index
    msg["flags"] = IFA_F_NODAD if v6 else 0
    msg["attrs"] = attrs
    return msg


def _copies(addresses: list[IfAddr], vip: VipSpec) -> list[IfAddr]:
    return [
        a
        for a in addresses
        if a.address == vip.address and (vip.interface is None or a.ifname == vip.interface)
    ]


def subnets_holding(vip: VipSpec, addresses: Iterable[IfAddr]) -> list[IfAddr]:
    """The addresses (other than the VIP itself) whose subnet contains the VIP: where IPaddr may put it
    when the haresources line names no interface. `hbvip check-config` asks the same question."""
    target = ipaddress.ip_address(vip.address)
    return [a for a in addresses if a.version == target.version and a.address != vip.address and target in a.network]


def _choose_interface(addresses: list[IfAddr], vip: VipSpec) -> tuple[str, int]:
    if vip.interface:
        index = interface_index(vip.interface)
        if index is None:
            raise VipError(f"VIP {vip.address}: interface {vip.interface} does not exist")
        return vip.interface, index
    matches = {(a.ifname, a.index) for a in subnets_holding(vip, addresses)}
    if not matches:
        raise VipError(
            f"VIP {vip.address}: no interface has a subnet containing it; name one (IPaddr::ip/prefix/iface)"
        )
    if len(matches) > 1:
        names = ", ".join(sorted(name for name, _unused in matches))
        raise VipError(f"VIP {vip.address}: several interfaces ({names}) match; name one (IPaddr::ip/prefix/iface)")
    return matches.pop()


def _subnet_prefix(addresses: list[IfAddr], ifname: str, vip_address: str) -> int:
    target = ipaddress.ip_address(vip_address)
    prefixes = [a.prefix for a in addresses
                if a.ifname == ifname and a.version == target.version and target in a.network and a.address != vip_address]
    if not prefixes:
        raise VipError(
            f"VIP {vip_address}: no subnet on {ifname} contains it, so its prefix is unknown; give one (IPaddr::ip/prefix)"
        )
    return max(prefixes)


def _default_broadcast(address: str, prefix: int) -> str | None:
    """The subnet's broadcast address, as Heartbeat's findif computes it; none for /31 and /32."""
    if prefix >= 31:
        return None
    return str(ipaddress.IPv4Interface(f"{address}/{prefix}").network.broadcast_address)
