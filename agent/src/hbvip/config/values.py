"""Value grammars shared by the config files: times, booleans, names, addresses."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable

# Heartbeat reads a bare number as seconds and accepts a unit suffix ("1500ms").
_TIME = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|msec|us|usec|s|sec)?$")
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "msec": 1e-3, "us": 1e-6, "usec": 1e-6}


def parse_time(value: str) -> float:
    """Seconds from a Heartbeat time value: "1" -> 1.0, "0.5" -> 0.5, "200ms" -> 0.2.

    Raises ValueError on anything else (negative, empty, unknown unit, nan).
    """
    match = _TIME.match(value.strip().lower())
    if match is None:
        raise ValueError(f"not a time value: {value!r}")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"not a time value: {value!r}")
    return seconds


_TRUE = {"true", "on", "yes", "y", "1"}
_FALSE = {"false", "off", "no", "n", "0"}


def parse_bool(value: str) -> bool:
    """Heartbeat's booleans (case-insensitive): true/on/yes/y/1 and false/off/no/n/0."""
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


# Linux interface names: at most 15 bytes, no '/', no whitespace; a ':' label suffix is allowed.
_IFACE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}(:[A-Za-z0-9_]{1,15})?$")
# Host names as `uname -n` prints them and as /etc/hosts holds them.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_][A-Za-z0-9_-]{0,62})*\.?$")


def is_interface_name(value: str) -> bool:
    return bool(_IFACE.match(value))


def is_host_name(value: str) -> bool:
    return bool(_HOSTNAME.match(value))


def ipv4(value: str) -> ipaddress.IPv4Address | None:
    """The address if value is a dotted-quad IPv4 address, else None."""
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        return None


def ipv6(value: str) -> ipaddress.IPv6Address | None:
    """The address if value is an IPv6 address (no zone, no prefix), else None."""
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return None if address.scope_id else address


def looks_like_ipv4(value: str) -> bool:
    """True for anything shaped like a dotted quad, valid or not (so "10.0.0.300" is an address typo)."""
    return bool(re.match(r"^\d+\.\d+\.\d+\.\d+$", value))


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a candidate is close to word, else ''."""
    import difflib  # pylint: disable=import-outside-toplevel  # only for a config with a typo

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""
