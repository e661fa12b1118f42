"""`hbvip check-config`'s second half: checks that need the live host, not just the files.

The parser proves the files are well-formed; what hurts operators is a config that is well-formed and
still wrong *for this machine*: a VIP outside the interface's subnet (Heartbeat's IPaddr then fails at
takeover time, at 3 a.m.), an interface that is down, node names that resolve to the VIP, a resource
script that hangs on `status`, an address some other machine already answers. Each finding is a
`Problem` pointing at the file and line to change, like the parser's.

The pure checks take a `HostView` (this host's links and addresses) so they are tested with fakes;
`lint()` gathers the view over netlink, runs the scripts and sends the ARP probes.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from pyroute2 import AsyncIPRoute

from hbvip.config import Config, Problem, VipSpec, resolve_script
from hbvip.config.problems import ERROR, WARNING
from hbvip.net.garp import arp_probe
from hbvip.net.icmp import ping
from hbvip.net.ifaddr import IfAddr, all_addresses
from hbvip.net.ndisc import neighbour_probe
from hbvip.net.vip import subnets_holding
from hbvip.records import dataclass, field
from hbvip.resources.scripts import SCRIPT_PATH, run_script

IFF_UP = 0x1
#: How long a resource script may take to answer `status` before lint calls it hung.
STATUS_TIMEOUT = 5.0


@dataclass(frozen=True)
class Link:
    """One interface as `check-config` sees it: name, state, MAC."""
    name: str
    admin_up: bool
    carrier: bool
    mac: str


@dataclass(frozen=True)
class HostView:
    """This host's interfaces and addresses (both families), as one snapshot."""

    links: dict[str, Link]
    addresses: tuple[IfAddr, ...]

    def local(self, address: str) -> bool:
        return any(a.address == address for a in self.addresses)


@dataclass
class LintReport:
    """What `check-config`'s host checks found."""
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was checked or skipped and why: an operator trusts a clean result more when it says so."""


async def read_host() -> HostView:
    async with AsyncIPRoute() as ipr:
        links = {}
        async for msg in await ipr.link("dump"):
            name = msg.get("IFLA_IFNAME")
            links[name] = Link(name, bool(msg["flags"] & IFF_UP), msg.get("IFLA_OPERSTATE") in ("UP", "UNKNOWN"),
                               msg.get("IFLA_ADDRESS") or "")
    return HostView(links, tuple(await all_addresses()))


# ---- VIP placement ------------------------------------------------------------------------------

def vip_interface(vip: VipSpec, host: HostView) -> str | None:
    """The interface the VIP would go on: the named one, else the only one whose subnet holds it."""
    if vip.interface:
        return vip.interface
    found = {a.ifname for a in subnets_holding(vip, host.addresses)}
    return found.pop() if len(found) == 1 else None


def check_vips(config: Config, host: HostView) -> list[Problem]:
    path = str(config.config_dir / "haresources")
    problems: list[Problem] = []
    for group in config.groups:
        for res in group.resources:
            if res.vip is None:
                continue
            vip = res.vip
            holding = subnets_holding(vip, host.addresses)
            if vip.interface:
                iface = vip.interface
                link = host.links.get(iface)
                if link is None:
                    problems.append(Problem(path, res.line, f"VIP {vip.address}: interface {iface} does not exist on this host",
                                            f"name an existing interface ({', '.join(sorted(host.links)) or 'none'})"))
                    continue
                mine = [a for a in host.addresses
                        if a.ifname == iface and a.address != vip.address and a.version == vip.version]
                if not any(a.ifname == iface for a in holding):
                    have = ", ".join(f"{a.address}/{a.prefix}" for a in mine) or f"no IPv{vip.version} address"
                    problems.append(Problem(path, res.line, f"VIP {vip.address} is outside every subnet on {iface} ({have}); "
                                            "clients on that network could not reach it",
                                            f"use an address in {iface}'s subnet, or name the interface that carries "
                                            f"{vip.address}'s subnet"))
            else:
                names = sorted({a.ifname for a in holding})
                if not names:
                    problems.append(Problem(path, res.line, f"VIP {vip.address} is outside every interface's subnet on this host",
                                            f"give the interface: IPaddr::{vip.address}/<prefix>/<iface>, or fix the address"))
                    continue
                if len(names) > 1:
                    problems.append(Problem(path, res.line, f"VIP {vip.address} matches subnets on several interfaces "
                                            f"({', '.join(names)})", f"name one: IPaddr::{vip.address}/<prefix>/{names[0]}"))
                    continue
                iface, link = names[0], host.links.get(names[0])
                if link is None:
                    continue
            if not link.admin_up:
                problems.append(Problem(path, res.line, f"interface {iface} (for VIP {vip.address}) is down",
                                        f"ip link set {iface} up, and make it come up at boot"))
            elif not link.carrier:
                problems.append(Problem(path, res.line, f"interface {iface} (for VIP {vip.address}) has no carrier",
                                        "check the cable/switch port", WARNING))
            same = [a for a in holding if a.ifname == iface]
            if vip.prefix is not None and same and all(a.prefix != vip.prefix for a in same):
                problems.append(Problem(path, res.line, f"VIP {vip.address}/{vip.prefix} has another prefix than "
                                        f"{iface}'s subnet /{same[0].prefix}",
                                        f"use /{same[0].prefix} unless you mean it", WARNING))
    return problems


# ---- node names ---------------------------------------------------------------------------------

def resolve_ipv4(name: str) -> list[str]:
    """What the resolver (/etc/hosts, DNS) gives for `name`; [] when nothing."""
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def check_node_names(config: Config, host: HostView, resolve: Callable[[str], list[str]] = resolve_ipv4) -> list[Problem]:
    """Node names must name the machines' fixed addresses: heartbeats sent to a name that resolves to
    the VIP follow the VIP to whoever holds it, and the pair splits."""
    hacf = config.hacf
    path, line = hacf.path, hacf.node_line
    vips = {v.address for g in config.groups for v in g.vips}
    ucast_lines = {m.address.lower(): m.line for m in hacf.media if m.kind == "ucast" and m.address}
    me = config.node_name.lower()
    problems: list[Problem] = []
    for name in hacf.nodes:
        addresses = resolve(name)
        where = ucast_lines.get(name.lower(), line)
        if not addresses:
            used = name.lower() in ucast_lines
            problems.append(Problem(path, where, f"node name {name} does not resolve to an IPv4 address",
                                    f"add '<fixed IP> {name}' to /etc/hosts on both nodes",
                                    ERROR if used else WARNING))
            continue
        on_vip = sorted(set(addresses) & vips)
        if on_vip:
            problems.append(Problem(path, where, f"node name {name} resolves to {', '.join(on_vip)}, a virtual IP",
                                    f"map {name} to its fixed address in /etc/hosts, never to the VIP"))
            continue
        local = [a for a in addresses if host.local(a)]
        if name.lower() == me and not local:
            problems.append(Problem(path, where, f"this node's name {name} resolves to {', '.join(addresses)}, "
                                    "which is not an address of this host",
                                    f"map {name} to this host's fixed address in /etc/hosts", WARNING))
        if name.lower() != me and local:
            problems.append(Problem(path, where, f"peer name {name} resolves to {', '.join(local)}, an address of "
                                    "this host: heartbeats would go to ourselves",
                                    f"map {name} to the peer's fixed address in /etc/hosts"))
    for medium in hacf.media:
        if medium.kind == "ucast" and medium.address in vips:
            problems.append(Problem(path, medium.line, f"ucast peer {medium.address} is a virtual IP",
                                    "send heartbeats to the peer's fixed address"))
    return problems


# ---- timers -------------------------------------------------------------------------------------

def check_timers(config: Config) -> list[Problem]:
    """Sanity beyond the parser's hard rules (which already carry Heartbeat's own warnings)."""
    t = config.hacf.timers
    lines = config.hacf.lines
    path = config.hacf.path
    problems = []
    if t.deadtime < 4 * t.keepalive:
        beats = t.deadtime / t.keepalive
        problems.append(Problem(path, lines.get("deadtime", lines.get("keepalive")),
                                f"deadtime {t.deadtime:g}s is only {beats:g} keepalives: a few lost heartbeats in a row "
                                "cause a failover", f"raise deadtime to at least {4 * t.keepalive:g}s (4x keepalive)",
                                WARNING))
    if t.initdead < 2 * t.deadtime:
        problems.append(Problem(path, lines.get("initdead", lines.get("deadtime")),
                                f"initdead {t.initdead:g}s is less than twice deadtime {t.deadtime:g}s; a peer that "
                                "boots slower than this one is declared dead and its resources taken",
                                f"set initdead to at least {2 * t.deadtime:g}s", WARNING))
    if config.hacf.ping and t.deadping < 2 * t.keepalive:
        problems.append(Problem(path, lines.get("deadping", lines.get("ping")),
                                f"deadping {t.deadping:g}s is less than twice keepalive {t.keepalive:g}s: ping nodes are "
                                "probed once per keepalive, so one lost echo would make this node give up its resources",
                                f"set deadping to at least {2 * t.keepalive:g}s (or leave it out: it defaults to deadtime)",
                                WARNING))
    return problems


# ---- ping nodes ---------------------------------------------------------------------------------

async def check_ping_nodes(config: Config, probe: Callable[[str], Awaitable[bool]] = ping) -> list[Problem]:
    """Every `ping` node answers now: one that never answers only weakens the tiebreaker, but if none
    does, the agent would hold nothing at all (a node that reaches no ping node gives everything up)."""
    nodes = config.hacf.ping
    if not nodes:
        return []
    line = config.hacf.lines.get("ping")
    answers = await asyncio.gather(*(probe(node) for node in nodes))
    silent = [node for node, ok in zip(nodes, answers) if not ok]
    if not silent:
        return []
    if len(silent) == len(nodes):
        return [Problem(config.hacf.path, line, f"no ping node answers ICMP echo ({', '.join(silent)}): this node "
                        "would hold no resources", "name stable neighbours that answer ping (the default gateway), "
                        "or check the firewall for ICMP", WARNING)]
    return [Problem(config.hacf.path, line, f"ping node {node} does not answer ICMP echo",
                    "name a neighbour that answers ping, or check the firewall for ICMP", WARNING) for node in silent]


# ---- resource scripts ---------------------------------------------------------------------------

async def check_scripts(config: Config, init_dir: Path, timeout: float = STATUS_TIMEOUT) -> list[Problem]:
    """Each script answers `status` in time: a script that hangs there stalls every takeover."""
    path = str(config.config_dir / "haresources")
    env = {"PATH": SCRIPT_PATH, "LANG": "C", "HA_D": str(config.config_dir),
           "HA_RSCDIR": str(config.config_dir / "resource.d")}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    jobs = []
    for group in config.groups:
        for res in group.resources:
            script = None if res.is_native else resolve_script(config.config_dir, res.name, init_dir)
            if script is None or (res.name, res.args) in seen:
                continue            # native, or missing/not executable: the parser reported it
            seen.add((res.name, res.args))
            jobs.append((res, script, run_script(script, res.name, res.args, "status", timeout=timeout, env=env)))
    problems = []
    for (res, script, _unused), call in zip(jobs, await asyncio.gather(*(j[2] for j in jobs))):
        if call.timed_out:
            problems.append(Problem(path, res.line, f"{script} {' '.join(res.args + ('status',))} did not answer "
                                    f"within {timeout:g}s", "make `status` quick and side-effect free"))
        elif call.rc is None:
            problems.append(Problem(path, res.line, call.stderr or f"{script} could not be run",
                                    "check its #! line and mode (chmod 755)"))
        elif call.rc not in (0, 3):   # LSB: 0 running, 3 stopped; anything else is the script failing
            said = (call.stderr.strip() or call.output.strip()).splitlines()[:1]
            problems.append(Problem(path, res.line, f"{script} status exited {call.rc}" + (f": {said[0]}" if said else ""),
                                    "run it by hand; Heartbeat reads only its output, but a failing status "
                                    "usually means a broken script", WARNING))
    return problems


# ---- is the VIP already somebody's? -------------------------------------------------------------

def pair_holders(run_dir: Path) -> dict[str, str] | None:
    """{vip: holder} from the running agent's status; None when no agent answers here."""
    from hbvip.control import call
    try:
        answer = call(run_dir, {"cmd": "status"}, timeout=3)
    except (OSError, ValueError):
        return None
    if not answer.get("ok"):
        return None
    return {vip: g["holder"] for g in answer["status"]["groups"] if g.get("holder") for vip in g["vips"]}


async def check_vips_unclaimed(config: Config, host: HostView, run_dir: Path,
                               probe: Callable[[str, str], set[str]] = arp_probe,
                               resolve: Callable[[str], list[str]] = resolve_ipv4,
                               probe6: Callable[[str, str], set[str]] = neighbour_probe) -> LintReport:
    """Error when another machine answers for a VIP (ARP probe; neighbour solicitation for an IPv6 VIP);
    the pair's own copy is not a conflict. The peer's MAC is learnt by an ARP probe of its address."""
    report = LintReport()
    path = str(config.config_dir / "haresources")
    held = pair_holders(run_dir)
    peers = [n for n in config.hacf.nodes if n.lower() != config.node_name.lower()]
    for group in config.groups:
        for res in group.resources:
            vip = res.vip
            if vip is None:
                continue
            kind = "Neighbour probe" if vip.version == 6 else "ARP probe"
            if host.local(vip.address):
                report.notes.append(f"{kind} of {vip.address} skipped: this node holds it")
                continue
            if held is not None and vip.address in held:
                report.notes.append(f"{kind} of {vip.address} skipped: the pair holds it ({held[vip.address]})")
                continue
            iface = vip_interface(vip, host)
            link = host.links.get(iface or "")
            if link is None or not link.admin_up:
                report.notes.append(f"{kind} of {vip.address} skipped: no usable interface")
                continue
            ask = probe6 if vip.version == 6 else probe
            claimants = await asyncio.to_thread(ask, iface, vip.address)  # type: ignore[arg-type]
            if not claimants:
                report.notes.append(f"{kind} of {vip.address} on {iface}: no other machine answers")
                continue
            peer_macs: set[str] = set()
            for peer in peers:
                for address in resolve(peer):
                    peer_macs |= await asyncio.to_thread(probe, iface, address)  # type: ignore[arg-type]
            if claimants <= peer_macs:
                # also when both nodes lint at once (Ansible runs hosts in parallel): they see each other's probes
                report.notes.append(f"{kind} of {vip.address}: only the peer ({', '.join(sorted(claimants))}) "
                                    "answers or probes for it")
                continue
            others = ", ".join(sorted(claimants - peer_macs))
            report.problems.append(Problem(path, res.line, f"VIP {vip.address} is already answered on {iface} by "
                                           f"another machine (MAC {others})",
                                           "pick a free address, or remove it from that machine first"))
    return report


# ---- all of it ----------------------------------------------------------------------------------

async def lint(config: Config, *, init_dir: Path, run_dir: Path, arp: bool = True,
               scripts: bool = True) -> LintReport:
    """Every host check for `config` on this machine."""
    host = await read_host()
    report = LintReport()
    report.problems += check_vips(config, host)
    report.problems += check_node_names(config, host)
    report.problems += check_timers(config)
    if scripts:
        report.problems += await check_scripts(config, init_dir)
    try:
        report.problems += await check_ping_nodes(config)
    except PermissionError:
        report.notes.append("ping nodes not probed: ICMP echo needs root (CAP_NET_RAW)")
    if arp:
        try:
            found = await check_vips_unclaimed(config, host, run_dir)
        except PermissionError:
            report.notes.append("ARP probes skipped: they need root (CAP_NET_RAW)")
        except OSError as exc:
            report.notes.append(f"ARP probes skipped: {exc.strerror or exc}")
        else:
            report.problems += found.problems
            report.notes += found.notes
    return report
