"""ha.cf: the cluster's nodes, heartbeat media and timers, as Heartbeat 3.0.6 reads them.

The same ha.cf must keep working on a real Heartbeat peer, so Heartbeat's directive names,
defaults and checks are kept; directives hbvip has no use for are accepted with a warning,
and only what would change behaviour silently (crm, autojoin) is refused.
Defaults follow Heartbeat 3.0.6 lib config.c `init_config()`: keepalive 1 s, deadtime 30 s,
warntime deadtime/2, initdead = deadtime if deadtime > 10 s, else 12 s if deadtime < 6 s,
else 2 x deadtime; udpport 694; auto_failback "legacy" (with a warning).
"""

from __future__ import annotations

from collections.abc import Callable

from hbvip.config.lexer import Comments, LogicalLine, logical_lines
from hbvip.config.media import Medium, mcast6_media, ping6_nodes, ucast6_media
from hbvip.config.problems import WARNING, Problem
from hbvip.config.values import did_you_mean, ipv4, is_host_name, is_interface_name, parse_bool, parse_time
from hbvip.records import dataclass, field

DEFAULT_UDPPORT = 694
DEFAULT_KEEPALIVE = 1.0
DEFAULT_DEADTIME = 30.0
SUPPORTED_NODE_COUNT = 2

# Heartbeat 3.0.6 directives hbvip reads no meaning from: accepted so a Heartbeat ha.cf loads.
IGNORED_DIRECTIVES = frozenset({
    "apiauth", "baud", "bad_packet_warn", "cluster", "compression", "compression_threshold",
    "conn_logd_time", "coredumps", "coreroot", "enable_config_writes", "env",
    "hbaping", "hbgenmethod", "hopfudge", "keepalive2", "max_rexmit_delay", "memreserve",
    "msgfmt", "nice_failback", "ping_group", "quorum_server", "realtime", "record_config_changes",
    "record_pengine_inputs", "respawn", "rtprio", "serial", "stonith", "stonith_host",
    "traditional_compression", "use_apphbd", "watchdog",
})

_SYSLOG_FACILITIES = frozenset({
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog",
    "user", "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7", "none",
})


@dataclass(frozen=True)
class Timers:
    """Heartbeat's timers, in seconds."""

    keepalive: float
    warntime: float
    deadtime: float
    initdead: float
    deadping: float
    """How long a `ping` node may stay silent before it counts as unreachable (Heartbeat: deadtime)."""


@dataclass(frozen=True)
class HaCf:
    """ha.cf as read: the directives hbvip uses, Heartbeat's defaults for the rest."""
    path: str
    nodes: tuple[str, ...]
    media: tuple[Medium, ...]
    udpport: int
    timers: Timers
    auto_failback: str
    logfile: str | None
    debugfile: str | None
    logfacility: str | None
    use_logd: bool
    autojoin: str
    debug: int
    ping: tuple[str, ...]
    uuidfrom: str
    crm: str
    node_line: int | None = None
    """Line of the first `node` directive: where cross-file checks about node names point."""
    lines: dict[str, int] = field(default_factory=dict)
    """Line of each directive's last occurrence (the one that counts): where host checks point."""


@dataclass
class _Reader:
    """Accumulates one ha.cf's directives; one method per directive keeps each rule in one place."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    node_line: int | None = None
    media: list[Medium] = field(default_factory=list)
    ping: list[str] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    def error(self, line: int | None, message: str, fix: str) -> None:
        self.problems.append(Problem(self.path, line, message, fix))

    def warn(self, line: int | None, message: str, fix: str) -> None:
        self.problems.append(Problem(self.path, line, message, fix, WARNING))

    # -- helpers -----------------------------------------------------------------------------

    def single(self, ll: LogicalLine) -> str | None:
        """The one value of a scalar directive; reports missing/extra values and repeats."""
        name, args = ll.words[0], ll.words[1:]
        if len(args) != 1:
            self.error(ll.line, f"{name} takes exactly one value, got {len(args)}",
                       f"write it as '{name} <value>'")
            return None
        if name in self.seen:
            self.warn(ll.line, f"{name} is set again (first set on line {self.seen[name]}); the last value wins",
                      "keep only one line")
        self.seen[name] = ll.line
        return args[0]

    def time(self, ll: LogicalLine) -> None:
        value = self.single(ll)
        if value is None:
            return
        try:
            seconds = parse_time(value)
        except ValueError:
            self.error(ll.line, f"{ll.words[0]} value {value!r} is not a time",
                       "give seconds (5, 0.5) or milliseconds (500ms)")
            return
        if seconds <= 0:
            self.error(ll.line, f"{ll.words[0]} must be greater than zero", "give a positive time")
            return
        self.values[ll.words[0]] = seconds

    def choice(self, ll: LogicalLine, allowed: tuple[str, ...]) -> None:
        value = self.single(ll)
        if value is None:
            return
        if value.lower() not in allowed:
            self.error(ll.line, f"{ll.words[0]} value {value!r} is not one of {', '.join(allowed)}",
                       f"use one of: {', '.join(allowed)}")
            return
        self.values[ll.words[0]] = value.lower()

    # -- directives --------------------------------------------------------------------------

    def node(self, ll: LogicalLine) -> None:
        if len(ll.words) < 2:
            self.error(ll.line, "node needs at least one node name", "write 'node <uname -n of each node>'")
        if self.node_line is None:
            self.node_line = ll.line
        for name in ll.words[1:]:
            if not is_host_name(name):
                self.error(ll.line, f"node name {name!r} is not a valid host name",
                           "use the output of `uname -n` on that node")
            elif name.lower() in (n.lower() for n in self.nodes):
                self.error(ll.line, f"node {name} is declared twice", "list each node once")
            else:
                self.nodes.append(name)

    def ucast(self, ll: LogicalLine) -> None:
        if len(ll.words) < 3:
            self.error(ll.line, "ucast needs an interface and a peer address",
                       "write 'ucast <interface> <peer name or IP>'")
            return
        iface = ll.words[1]
        if not self._interface_ok(ll, iface):
            return
        for host in ll.words[2:]:
            if ipv4(host) is None and not is_host_name(host):
                self.error(ll.line, f"ucast peer {host!r} is neither an IPv4 address nor a host name",
                           "give the peer's fixed IP address or its node name")
                continue
            self.media.append(Medium("ucast", iface, host, ll.line))

    def bcast(self, ll: LogicalLine) -> None:
        if len(ll.words) < 2:
            self.error(ll.line, "bcast needs at least one interface", "write 'bcast <interface> ...'")
        for iface in ll.words[1:]:
            if self._interface_ok(ll, iface):
                self.media.append(Medium("bcast", iface, None, ll.line))

    def mcast(self, ll: LogicalLine) -> None:
        args = ll.words[1:]
        usage = "write 'mcast <interface> <group 224.0.0.0-239.255.255.255> [port] [ttl 1-255] [loop 0|1]'"
        if not 2 <= len(args) <= 5:
            self.error(ll.line, f"mcast takes 2 to 5 values, got {len(args)}", usage)
            return
        iface, group = args[0], args[1]
        if not self._interface_ok(ll, iface):
            return
        address = ipv4(group)
        if address is None or not address.is_multicast:
            self.error(ll.line, f"mcast group {group!r} is not an IPv4 multicast address", usage)
            return
        numbers = []
        for label, text, low, high in zip(("port", "ttl", "loop"), args[2:], (1, 1, 0), (65535, 255, 1)):
            if not text.isdigit() or not low <= int(text) <= high:
                self.error(ll.line, f"mcast {label} {text!r} is out of range {low}-{high}", usage)
                return
            numbers.append(int(text))
        port, ttl, loop = (numbers + [None, 1, 0][len(numbers):])[:3]
        self.media.append(Medium("mcast", iface, group, ll.line, port=port, ttl=int(ttl), loop=int(loop)))

    def udpport(self, ll: LogicalLine) -> None:
        value = self.single(ll)
        if value is None:
            return
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            self.error(ll.line, f"udpport {value!r} is not a port number", "give a number 1-65535 (Heartbeat uses 694)")
            return
        self.values["udpport"] = int(value)

    def auto_failback(self, ll: LogicalLine) -> None:
        value = self.single(ll)
        if value is None:
            return
        if value.lower() == "legacy":
            self.values["auto_failback"] = "legacy"
            return
        try:
            self.values["auto_failback"] = "on" if parse_bool(value) else "off"
        except ValueError:
            self.error(ll.line, f"auto_failback value {value!r} is not on, off or legacy",
                       "use 'auto_failback on' (the home node takes its resources back) or 'off'")

    def path_value(self, ll: LogicalLine) -> None:
        value = self.single(ll)
        if value is None:
            return
        if not value.startswith("/"):
            self.error(ll.line, f"{ll.words[0]} {value!r} is not an absolute path", "give a path starting with /")
            return
        self.values[ll.words[0]] = value

    def logfacility(self, ll: LogicalLine) -> None:
        value = self.single(ll)
        if value is None:
            return
        if value.lower() not in _SYSLOG_FACILITIES:
            self.error(ll.line, f"logfacility {value!r} is not a syslog facility" + did_you_mean(value, _SYSLOG_FACILITIES),
                       "use daemon, local0-local7, ... or none")
            return
        self.values["logfacility"] = value.lower()

    def use_logd(self, ll: LogicalLine) -> None:
        value = self.single(ll)
        if value is None:
            return
        try:
            self.values["use_logd"] = parse_bool(value)
        except ValueError:
            self.error(ll.line, f"use_logd value {value!r} is not a boolean", "use yes or no")

    def autojoin(self, ll: LogicalLine) -> None:
        self.choice(ll, ("none", "other", "any"))
        if self.values.get("autojoin", "none") != "none":
            self.error(ll.line, f"autojoin {self.values['autojoin']} is not supported with haresources "
                       "(Heartbeat refuses it too: R1 style resource management conflicts with autojoin)",
                       "set 'autojoin none' and list both nodes on 'node' lines")

    def crm(self, ll: LogicalLine) -> None:
        value = self.single(ll)
        if value is None:
            return
        self.values["crm"] = value.lower()
        if value.lower() not in ("no", "off", "false", "n", "0"):
            self.error(ll.line, f"crm {value}: crm/pacemaker is not supported",
                       "remove crm or set crm no; hbvip manages haresources (R1 style) only")

    def debug(self, ll: LogicalLine) -> None:
        value = self.single(ll)
        if value is None:
            return
        if not value.isdigit() or int(value) > 255:
            self.error(ll.line, f"debug level {value!r} is not a number 0-255", "use 0 (off) to 3")
            return
        self.values["debug"] = int(value)

    def ping_nodes(self, ll: LogicalLine) -> None:
        if len(ll.words) < 2:
            self.error(ll.line, "ping needs at least one address", "write 'ping <IP of a router or switch>'")
        for host in ll.words[1:]:
            if ipv4(host) is None and not is_host_name(host):
                self.error(ll.line, f"ping node {host!r} is neither an IPv4 address nor a host name",
                           "give the IP address of a stable neighbour such as the default gateway")
            else:
                self.ping.append(host)

    def ignored(self, ll: LogicalLine) -> None:
        self.warn(ll.line, f"{ll.words[0]} is a Heartbeat directive hbvip ignores",
                  "leave it for a Heartbeat peer, or remove it")

    def _interface_ok(self, ll: LogicalLine, iface: str) -> bool:
        if is_interface_name(iface):
            return True
        self.error(ll.line, f"{ll.words[0]} interface {iface!r} is not a valid interface name",
                   "give a network interface such as eth0")
        return False


def _directive_table(reader: _Reader) -> dict[str, Callable[[LogicalLine], None]]:
    table: dict[str, Callable[[LogicalLine], None]] = {
        "node": reader.node, "ucast": reader.ucast, "bcast": reader.bcast, "mcast": reader.mcast,
        "ucast6": lambda ll: reader.media.extend(ucast6_media(ll, reader.error)),
        "mcast6": lambda ll: reader.media.extend(mcast6_media(ll, reader.error)),
        "ping6": lambda ll: reader.ping.extend(ping6_nodes(ll, reader.error)),
        "udpport": reader.udpport, "keepalive": reader.time, "warntime": reader.time,
        "deadtime": reader.time, "initdead": reader.time, "deadping": reader.time, "auto_failback": reader.auto_failback,
        "logfile": reader.path_value, "debugfile": reader.path_value, "logfacility": reader.logfacility,
        "use_logd": reader.use_logd, "autojoin": reader.autojoin, "crm": reader.crm,
        "debug": reader.debug, "ping": reader.ping_nodes,
        "uuidfrom": lambda ll: reader.choice(ll, ("file", "nodename")),
    }
    table.update({name: reader.ignored for name in IGNORED_DIRECTIVES})
    return table


def _timers(reader: _Reader) -> Timers:
    """Heartbeat's defaults and cross-checks; problems point at the directive that must change."""
    values, seen = reader.values, reader.seen
    keepalive = float(values.get("keepalive", DEFAULT_KEEPALIVE))  # type: ignore[arg-type]
    deadtime = float(values.get("deadtime", DEFAULT_DEADTIME))  # type: ignore[arg-type]
    warntime = float(values.get("warntime", deadtime / 2))  # type: ignore[arg-type]
    if "initdead" in values:
        initdead = float(values["initdead"])  # type: ignore[arg-type]
    elif deadtime > 10:
        initdead = deadtime
    else:
        initdead = 12.0 if deadtime < 6 else 2 * deadtime
    dead_line = seen.get("deadtime", seen.get("keepalive"))
    if deadtime <= 2 * keepalive:
        reader.error(dead_line, f"deadtime {deadtime:g}s must be more than twice keepalive {keepalive:g}s "
                     "(Heartbeat: Dead time is too small compared to keepalive)",
                     f"raise deadtime above {2 * keepalive:g} or lower keepalive")
    if initdead < deadtime:
        reader.error(seen.get("initdead", dead_line), f"initdead {initdead:g}s is smaller than deadtime {deadtime:g}s",
                     f"set initdead to at least {deadtime:g} (Heartbeat suggests >= 10s)")
    elif initdead < 10:
        reader.warn(seen.get("initdead", dead_line), f"initdead {initdead:g}s may be too small (Heartbeat: "
                    "Initial dead time may be too small!)", "initdead accounts for slow network start-up; use >= 10")
    if warntime >= deadtime:
        reader.error(seen.get("warntime", dead_line), f"warntime {warntime:g}s must be less than deadtime {deadtime:g}s",
                     "set warntime between keepalive and deadtime")
    elif warntime <= keepalive:
        reader.warn(seen.get("warntime", dead_line), f"warntime {warntime:g}s is not more than keepalive {keepalive:g}s, "
                    "so every heartbeat would be reported late", "set warntime between keepalive and deadtime")
    deadping = float(values.get("deadping", deadtime))  # type: ignore[arg-type]
    return Timers(keepalive=keepalive, warntime=warntime, deadtime=deadtime, initdead=initdead, deadping=deadping)


def _whole_file_checks(reader: _Reader) -> None:
    if not reader.media:
        reader.error(None, "no heartbeat media defined (Heartbeat: No heartbeat media defined)",
                     "add 'ucast <interface> <peer>' lines (or bcast/mcast)")
    count = len(reader.nodes)
    if count != SUPPORTED_NODE_COUNT:
        names = ", ".join(reader.nodes) or "none"
        fix = ("add the peer's `uname -n` to the node line" if count < SUPPORTED_NODE_COUNT
               else "hbvip runs pairs: keep two 'node' names")
        reader.error(reader.node_line, f"hbvip supports exactly two nodes, found {count} ({names})", fix)
    if "auto_failback" not in reader.values:
        reader.warn(None, "auto_failback is not set; Heartbeat's default 'legacy' is deprecated",
                    "add 'auto_failback on' or 'auto_failback off'")


def parse_hacf(text: str, path: str) -> tuple[HaCf | None, list[Problem]]:
    """Parse ha.cf text; returns (HaCf or None when any error was found, all problems)."""
    reader = _Reader(path)
    table = _directive_table(reader)
    for ll in logical_lines(text, Comments.ANYWHERE):
        handler = table.get(ll.words[0])
        if handler is None:
            hint = did_you_mean(ll.words[0], table) or did_you_mean(ll.words[0].lower(), table)
            reader.error(ll.line, f"unknown directive [{ll.words[0]}]{hint}",
                         "fix the spelling or remove the line (see ha.cf(5))")
            continue
        reader.lines[ll.words[0]] = ll.line
        handler(ll)
    timers = _timers(reader)
    _whole_file_checks(reader)
    if any(p.is_error for p in reader.problems):
        return None, reader.problems
    v = reader.values
    hacf = HaCf(
        path=path, nodes=tuple(reader.nodes), media=tuple(reader.media),
        udpport=int(v.get("udpport", DEFAULT_UDPPORT)),  # type: ignore[call-overload]
        timers=timers, auto_failback=str(v.get("auto_failback", "legacy")),
        logfile=v.get("logfile"), debugfile=v.get("debugfile"),  # type: ignore[arg-type]
        logfacility=v.get("logfacility"), use_logd=bool(v.get("use_logd", False)),  # type: ignore[arg-type]
        autojoin=str(v.get("autojoin", "none")), debug=int(v.get("debug", 0)),  # type: ignore[call-overload]
        ping=tuple(reader.ping), uuidfrom=str(v.get("uuidfrom", "file")), crm=str(v.get("crm", "no")),
        node_line=reader.node_line, lines=reader.lines,
    )
    return hacf, reader.problems
