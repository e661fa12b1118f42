"""haresources: which node is home to which resource group, and the resources in order.

Grammar (Heartbeat R1 style): `<home-node> <resource> [<resource> ...]`, one group per logical
line, `\\` continues a line.  A resource is `name::arg1::arg2`; a bare IPv4 address means
`IPaddr::<address>`; IPaddr/IPaddr2 take `ip[/prefix[/interface[/broadcast]]]` and IPv6addr takes
`ipv6[/prefix[/interface]]` (Heartbeat's IPv6addr wrapper splits its one argument so), which hbvip
handles natively, so it is validated here rather than failing later at takeover time.

An IPv6 address holds `::` itself, so for the VIP resources everything after the first `::` is the one
argument. (Heartbeat's ResourceManager splits every `::`, so with real Heartbeat the address must be
written without `::` compression, `IPv6addr::2001:db8:0:0:0:0:0:100/64/eth0`; hbvip reads both, and warns
about the compressed form so a file shared with a Heartbeat node is fixed before a takeover needs it.)
IPaddr2 takes IPv6 too, as Pacemaker's IPaddr2 does; Heartbeat's IPaddr is IPv4 only.
"""

from __future__ import annotations

import ipaddress

from hbvip.config.lexer import Comments, logical_lines
from hbvip.config.problems import WARNING, Problem
from hbvip.config.values import ipv4, ipv6, is_host_name, is_interface_name, looks_like_ipv4
from hbvip.records import dataclass

NATIVE_RESOURCES = frozenset({"IPaddr", "IPaddr2", "IPv6addr"})
#: Which address families each native resource takes.
_FAMILIES = {"IPaddr": (4,), "IPaddr2": (4, 6), "IPv6addr": (6,)}
_VIP_FORM = "ip[/prefix[/interface[/broadcast]]], e.g. IPaddr::10.0.0.100/24/eth0"
_VIP6_FORM = "ipv6[/prefix[/interface]], e.g. IPv6addr::2001:db8::100/64/eth0"


@dataclass(frozen=True)
class VipSpec:
    """An IPaddr/IPaddr2/IPv6addr resource's address, prefix, interface and broadcast."""
    address: str
    prefix: int | None
    interface: str | None
    broadcast: str | None

    @property
    def version(self) -> int:
        """4 or 6: IPv6 VIPs are announced by neighbour advertisement, not ARP, and have no broadcast."""
        return 6 if ":" in self.address else 4


@dataclass(frozen=True)
class Resource:
    """One resource of a group: script name and arguments, as written."""
    name: str
    args: tuple[str, ...]
    spec: str
    line: int
    vip: VipSpec | None = None

    @property
    def is_native(self) -> bool:
        """IPaddr/IPaddr2 are run by hbvip itself, not by a script."""
        return self.name in NATIVE_RESOURCES


@dataclass(frozen=True)
class ResourceGroup:
    """One haresources line: the home node and its resources, in start order."""
    home_node: str
    resources: tuple[Resource, ...]
    line: int
    end_line: int  # last physical line (continuations), for tools that edit one group in place

    @property
    def key(self) -> str:
        """How Heartbeat names a group: by its first resource as written."""
        return self.resources[0].spec

    @property
    def vips(self) -> tuple[VipSpec, ...]:
        return tuple(r.vip for r in self.resources if r.vip is not None)


class _SpecError(ValueError):
    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def _prefix(text: str, bits: int = 32) -> int:
    if text.isdigit():
        prefix = int(text)
        if 1 <= prefix <= bits:
            return prefix
        form = _VIP_FORM if bits == 32 else _VIP6_FORM
        raise _SpecError(f"prefix /{text} is out of range 1-{bits}", f"use a prefix length 1-{bits}: {form}")
    if bits == 32 and looks_like_ipv4(text):  # Heartbeat's IPaddr also takes a dotted netmask
        try:
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
        except ValueError:
            prefix = 0
        if prefix >= 1:
            return prefix
    raise _SpecError(f"netmask {text!r} is neither a prefix length nor a netmask", f"use {_VIP_FORM}")


def parse_vip6(spec: str) -> VipSpec:
    """`ipv6[/prefix[/interface]]` -> VipSpec; raises _SpecError with a fix."""
    parts = spec.split("/")
    if len(parts) > 3:
        raise _SpecError(f"too many '/' fields in {spec!r}", f"use {_VIP6_FORM}")
    address = ipv6(parts[0])
    if address is None:
        raise _SpecError(f"{parts[0]!r} is not a valid IPv6 address", f"use {_VIP6_FORM}")
    if address.is_multicast or address.is_loopback or address.is_unspecified or address.is_link_local \
            or address.ipv4_mapped is not None:
        raise _SpecError(f"{parts[0]} cannot be a virtual IP (multicast, loopback, link-local or reserved)",
                         "pick an unused global or unique-local unicast address in the service prefix")
    prefix = _prefix(parts[1], 128) if len(parts) > 1 and parts[1] else None
    interface = parts[2] if len(parts) > 2 and parts[2] else None
    if interface is not None and not is_interface_name(interface):
        raise _SpecError(f"interface {interface!r} is not a valid interface name", f"use {_VIP6_FORM}")
    return VipSpec(str(address), prefix, interface, None)


def parse_vip(spec: str, families: tuple[int, ...] = (4,)) -> VipSpec:
    """`ip[/prefix[/interface[/broadcast]]]` -> VipSpec; raises _SpecError with a fix.

    With 6 in `families` an IPv6 address is read as IPv6addr reads it (no broadcast field).
    """
    if ":" in spec.split("/")[0]:
        if 6 not in families:
            raise _SpecError(f"{spec.split('/')[0]!r} is an IPv6 address; IPaddr is IPv4 only",
                             f"write IPv6addr::{spec} (or IPaddr2::{spec})")
        return parse_vip6(spec)
    if 4 not in families:
        raise _SpecError(f"{spec.split('/')[0]!r} is not an IPv6 address; IPv6addr is IPv6 only",
                         f"write IPaddr::{spec} for an IPv4 VIP, or {_VIP6_FORM}")
    parts = spec.split("/")
    if len(parts) > 4:
        raise _SpecError(f"too many '/' fields in {spec!r}", f"use {_VIP_FORM}")
    address = ipv4(parts[0])
    if address is None:
        raise _SpecError(f"{parts[0]!r} is not a valid IPv4 address", f"use {_VIP_FORM}")
    if address.is_multicast or address.is_loopback or address.is_unspecified or address == ipaddress.IPv4Address("255.255.255.255"):
        raise _SpecError(f"{parts[0]} cannot be a virtual IP (multicast, loopback or reserved)",
                         "pick an unused unicast address in the service subnet")
    prefix = _prefix(parts[1]) if len(parts) > 1 and parts[1] else None
    interface = parts[2] if len(parts) > 2 and parts[2] else None
    if interface is not None and not is_interface_name(interface):
        raise _SpecError(f"interface {interface!r} is not a valid interface name", f"use {_VIP_FORM}")
    broadcast = parts[3] if len(parts) > 3 and parts[3] else None
    if broadcast is not None and ipv4(broadcast) is None:
        raise _SpecError(f"broadcast {broadcast!r} is not a valid IPv4 address", f"use {_VIP_FORM}")
    return VipSpec(str(address), prefix, interface, broadcast)


def parse_resource(spec: str, line: int) -> Resource:
    """One haresources word -> Resource; raises _SpecError with a fix."""
    fields = spec.split("::")
    name, args = fields[0], tuple(fields[1:])
    if looks_like_ipv4(name.split("/")[0]) and not args:
        return Resource("IPaddr", (spec,), spec, line, parse_vip(spec))
    if ipv6(spec.split("/")[0]) is not None:
        raise _SpecError(f"a bare IPv6 address is not a resource (Heartbeat would run a script {name!r})",
                         f"write IPv6addr::{spec}")
    if name in NATIVE_RESOURCES and args and (
            name == "IPv6addr" or ipv6(spec.split("::", 1)[1].split("/")[0]) is not None):
        args = (spec.split("::", 1)[1],)  # the IPv6 address's own '::' are part of it
    if not name:
        raise _SpecError(f"resource {spec!r} has no name before '::'", "write name::arg, e.g. IPaddr::10.0.0.100/24/eth0")
    if "/" in name or name in (".", ".."):
        raise _SpecError(f"resource name {name!r} must be a script name, not a path",
                         "put the script in resource.d/ and name it without a directory")
    if any(not a for a in args):
        raise _SpecError(f"resource {spec!r} has an empty argument", "remove the stray '::'")
    if name in NATIVE_RESOURCES:
        if len(args) != 1:
            raise _SpecError(f"{name} takes one argument, got {len(args)}", f"write {name}::{_VIP_FORM.split(', e.g. ', maxsplit=1)[0]}")
        return Resource(name, args, spec, line, parse_vip(args[0], _FAMILIES[name]))
    return Resource(name, args, spec, line)


def parse_haresources(text: str, path: str) -> tuple[tuple[ResourceGroup, ...], list[Problem]]:
    """Parse haresources text into groups; problems for each bad line, VIPs used twice."""
    groups: list[ResourceGroup] = []
    problems: list[Problem] = []
    vip_lines: dict[str, int] = {}
    for ll in logical_lines(text, Comments.WORD_START, continuation=True):
        home, specs = ll.words[0], ll.words[1:]
        ok = True
        if not is_host_name(home):
            problems.append(Problem(path, ll.line, f"home node {home!r} is not a valid node name",
                                    "start the line with the `uname -n` of the node that normally holds the group"))
            ok = False
        if not specs:
            problems.append(Problem(path, ll.line, f"node {home} has no resources on its line",
                                    "write '<node> <resource> ...', e.g. 'server1 IPaddr::10.0.0.100/24/eth0'"))
            continue
        resources: list[Resource] = []
        for spec in specs:
            try:
                resource = parse_resource(spec, ll.line)
            except _SpecError as exc:
                problems.append(Problem(path, ll.line, f"resource {spec}: {exc}", exc.fix))
                ok = False
                continue
            if resource.vip is not None:
                first = vip_lines.setdefault(resource.vip.address, ll.line)
                if first != ll.line or sum(1 for r in resources if r.vip and r.vip.address == resource.vip.address):
                    problems.append(Problem(path, ll.line, f"virtual IP {resource.vip.address} is already used on line {first}",
                                            "give each group its own VIP; one address can have one holder"))
                    ok = False
            if (warning := _compressed_ipv6(resource, path)) is not None:
                problems.append(warning)
            resources.append(resource)
        if ok:
            groups.append(ResourceGroup(home, tuple(resources), ll.line, ll.end_line))
    return tuple(groups), problems


def _compressed_ipv6(resource: Resource, path: str) -> Problem | None:
    """A warning for an IPv6 VIP written with `::`: Heartbeat 3.0.6's ResourceManager splits a resource
    at every `::`, so its resource script gets the address in pieces and the VIP is never served by a
    Heartbeat node. hbvip reads it whole, so this is only a warning; the fix is the full form."""
    if resource.vip is None or resource.vip.version != 6:
        return None
    written, sep, rest = resource.args[0].partition("/")
    if "::" not in written:
        return None
    full = ":".join(f"{int(group, 16):x}" for group in ipaddress.IPv6Address(written).exploded.split(":"))
    pieces = " ".join(resource.spec.split("::")[1:])
    return Problem(path, resource.line,
                   f"resource {resource.spec}: real Heartbeat 3.0.6 splits resources at every '::' and would run "
                   f"'{resource.name} {pieces} start', so a Heartbeat node never serves {written} "
                   "(hbvip reads it whole)",
                   f"if a Heartbeat node shares this file, write {resource.name}::{full}{sep}{rest}", WARNING)
