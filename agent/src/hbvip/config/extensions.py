"""hbvip.cf: settings only hbvip understands, kept out of ha.cf.

A real Heartbeat refuses unknown ha.cf directives, so hbvip-only knobs live in their own file
(optional, same "directive value" grammar) and one ha.cf keeps serving a Heartbeat peer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from hbvip.config.lexer import Comments, logical_lines
from hbvip.config.problems import Problem
from hbvip.config.values import did_you_mean, parse_time


@dataclass(frozen=True)
class Extensions:
    garp_count: int = 5
    """Gratuitous ARPs sent after taking a VIP (Heartbeat's IPaddr sends 5)."""
    garp_interval: float = 0.2
    """Seconds between those ARPs."""
    script_timeout: float = 30.0
    """Seconds a resource script may run before it counts as failed."""
    garp_refresh: float = 0.0
    """Seconds between repeated ARP bursts while holding a VIP; 0 = never."""


_NAMES = tuple(f.name for f in fields(Extensions))


def _convert(name: str, value: str) -> int | float:
    """The typed value of one directive; ValueError with the fix as message."""
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
    values: dict[str, int | float] = {}
    for ll in logical_lines(text, Comments.ANYWHERE):
        name, args = ll.words[0], ll.words[1:]
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
    return Extensions(**values), problems  # type: ignore[arg-type]
