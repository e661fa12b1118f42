"""hbvip.cf: settings only hbvip understands, kept out of ha.cf.

A real Heartbeat refuses unknown ha.cf directives, so hbvip-only knobs live in their own file
(optional, same "directive value" grammar) and one ha.cf keeps serving a Heartbeat peer.
"""

from __future__ import annotations

import ipaddress

from hbvip.config.health import HEALTH_DIRECTIVES, Check, Monitor, TrackInterface, check_health_items, parse_health_line
from hbvip.config.lexer import Comments, logical_lines
from hbvip.config.problems import Problem
from hbvip.config.values import did_you_mean, parse_bool, parse_time
from hbvip.records import dataclass, fields

#: Where `metrics_listen on` serves: loopback only, so turning metrics on never exposes the pair.
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_METRICS_PORT = 9694


@dataclass(frozen=True)
class Extensions:
    """hbvip.cf: what hbvip adds to Heartbeat's files, with the defaults when it is absent."""
    garp_count: int = 5
    """Gratuitous ARPs sent after taking a VIP (Heartbeat's IPaddr sends 5)."""
    garp_interval: float = 0.2
    """Seconds between those ARPs."""
    script_timeout: float = 30.0
    """Seconds a resource script may run before it counts as failed."""
    garp_refresh: float = 0.0
    """Seconds between repeated ARP bursts while holding a VIP; 0 = never."""
    metrics_listen: tuple[str, int] | None = None
    """(address, port) of the Prometheus endpoint; None = off (the default)."""
    metrics_textfile: str | None = None
    """A node_exporter textfile (`*.prom`) rewritten atomically on changes; None = off."""
    checks: tuple[Check, ...] = ()
    """Service checks run on both nodes (`check` lines; see config/health.py)."""
    monitors: tuple[Monitor, ...] = ()
    """Resource scripts whose `status` the holder watches (`monitor` lines)."""
    track_interfaces: tuple[TrackInterface, ...] = ()
    """Interfaces whose link state decides eligibility (`track_interface` lines)."""

    @property
    def has_health(self) -> bool:
        """Health directives are set (without them nothing runs and no eligibility is sent)."""
        return bool(self.checks or self.monitors or self.track_interfaces)


_HEALTH_FIELDS = ("checks", "monitors", "track_interfaces")
_SETTINGS = tuple(f.name for f in fields(Extensions) if f.name not in _HEALTH_FIELDS)
_NAMES = _SETTINGS + HEALTH_DIRECTIVES


def _listen(value: str) -> tuple[str, int] | None:
    """`off`, `on` (loopback, default port), `PORT` (loopback), `IP:PORT` or `[IPv6]:PORT`."""
    fix = f"write off, on ({DEFAULT_METRICS_HOST}:{DEFAULT_METRICS_PORT}), a port, or address:port such as 127.0.0.1:9694"
    try:
        if not parse_bool(value):
            return None
        return DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT
    except ValueError:
        pass
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = DEFAULT_METRICS_HOST, value
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(fix)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"give an IP address, not a name ({fix})") from None
    return str(address), int(port)


def _textfile(value: str) -> str | None:
    if value.lower() in ("off", "no", "none"):
        return None
    if not value.startswith("/") or not value.endswith(".prom"):
        raise ValueError("give an absolute path ending in .prom (node_exporter reads only *.prom), or off")
    return value


def _convert(name: str, value: str) -> int | float | str | tuple[str, int] | None:
    """The typed value of one directive; ValueError with the fix as message."""
    if name == "metrics_listen":
        return _listen(value)
    if name == "metrics_textfile":
        return _textfile(value)
    if name == "garp_count":
        if not value.isdigit() or not 1 <= int(value) <= 100:
            raise ValueError("give a whole number 1-100")
        return int(value)
    try:
        seconds = parse_time(value)
    except ValueError:
        raise ValueError("give seconds (0.2) or milliseconds (200ms)") from None
    if name == "garp_refresh":
        return seconds
    if seconds <= 0:
        raise ValueError("give a time greater than zero")
    return seconds


def parse_extensions(text: str, path: str) -> tuple[Extensions, list[Problem]]:
    """Parse hbvip.cf text; unset or broken directives keep their defaults (and are reported)."""
    problems: list[Problem] = []
    values: dict[str, object] = {}
    raw_lines = text.splitlines()
    health: list[Check | Monitor | TrackInterface] = []
    for ll in logical_lines(text, Comments.ANYWHERE):
        name, args = ll.words[0], ll.words[1:]
        if name in HEALTH_DIRECTIVES:
            if (item := parse_health_line(raw_lines[ll.line - 1], path, ll.line, problems)) is not None:
                health.append(item)
            continue
        if name not in _NAMES:
            problems.append(Problem(path, ll.line, f"unknown directive [{name}]{did_you_mean(name, _NAMES)}",
                                    f"hbvip.cf knows: {', '.join(_NAMES)}"))
            continue
        if len(args) != 1:
            problems.append(Problem(path, ll.line, f"{name} takes exactly one value, got {len(args)}",
                                    f"write '{name} <value>'"))
            continue
        try:
            values[name] = _convert(name, args[0])
        except ValueError as exc:
            problems.append(Problem(path, ll.line, f"{name} value {args[0]!r} is not valid", str(exc)))
    check_health_items(tuple(health), path, problems)
    values["checks"] = tuple(h for h in health if isinstance(h, Check))
    values["monitors"] = tuple(h for h in health if isinstance(h, Monitor))
    values["track_interfaces"] = tuple(h for h in health if isinstance(h, TrackInterface))
    return Extensions(**values), problems  # type: ignore[arg-type]
