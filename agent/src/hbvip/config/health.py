"""hbvip.cf's service-health directives: `check`, `monitor`, `track_interface`.

Heartbeat R1 only notices a dead node; these say when a live node should not hold a group. They live in
hbvip.cf (not ha.cf) so one ha.cf keeps serving a real Heartbeat peer. The option words and defaults
follow keepalived's `vrrp_script` (interval 1 s, fall 1, rise 1) and Pacemaker's monitor operation
(`restarts` = migration-threshold - 1, `failure_timeout` 0 = until cleared), so a translation keeps
its numbers:

    check NAME command "<shell command>" [interval T] [timeout T] [fall N] [rise N] [group KEY]
    monitor SCRIPT [interval T] [timeout T] [fall N] [restarts N] [failure_timeout T]
    track_interface IFACE

Times take Heartbeat's units (`2`, `500ms`). A check's command is one shell word in double or single
quotes (a `#` inside the quotes is part of it), so these lines are split with shell quoting rules.
"""

from __future__ import annotations

import shlex

from hbvip.config.problems import Problem
from hbvip.config.values import did_you_mean, is_interface_name, parse_time
from hbvip.records import dataclass

HEALTH_DIRECTIVES = ("check", "monitor", "track_interface")
_CHECK_FORM = 'check NAME command "<shell command>" [interval T] [timeout T] [fall N] [rise N] [group KEY]'
_MONITOR_FORM = "monitor SCRIPT [interval T] [timeout T] [fall N] [restarts N] [failure_timeout T]"


@dataclass(frozen=True)
class Check:
    """A command run on both nodes; exit 0 = healthy. `fall` failures in a row make the node ineligible
    for `group` (every group when None), `rise` successes in a row make it eligible again."""

    name: str
    command: str
    line: int
    interval: float = 1.0
    timeout: float = 1.0
    fall: int = 1
    rise: int = 1
    group: str | None = None


@dataclass(frozen=True)
class Monitor:
    """A haresources resource script whose `status` the holder runs; `fall` failures in a row restart
    it locally up to `restarts` times, then the group moves and this node stays ineligible for it
    until `failure_timeout` passes (0 = until `hbvip cleanup GROUP`)."""

    script: str
    line: int
    interval: float = 10.0
    timeout: float = 20.0
    fall: int = 1
    restarts: int = 1
    failure_timeout: float = 0.0


@dataclass(frozen=True)
class TrackInterface:
    """Link down on `interface` makes the node ineligible for the groups whose VIP is on it."""

    interface: str
    line: int


HealthItem = Check | Monitor | TrackInterface

_COUNTS = {"fall": (1, 1000), "rise": (1, 1000), "restarts": (0, 100)}
_TIMES = ("interval", "timeout", "failure_timeout")


def _split(raw: str) -> list[str] | str:
    """The words of a raw line with shell quoting and `#` comments; a str is the parse error."""
    try:
        return shlex.split(raw, comments=True)
    except ValueError as exc:
        return str(exc)


def _options(words: list[str], allowed: tuple[str, ...], path: str, line: int,
             problems: list[Problem]) -> dict[str, object] | None:
    """`key value` pairs after the fixed words, typed; None when any is wrong (each one reported)."""
    out: dict[str, object] = {}
    ok = True
    if len(words) % 2:
        problems.append(Problem(path, line, f"option {words[-1]!r} has no value", f"write '{words[-1]} <value>'"))
        return None
    for key, value in zip(words[::2], words[1::2]):
        if key not in allowed:
            problems.append(Problem(path, line, f"unknown option [{key}]{did_you_mean(key, allowed)}",
                                    f"allowed here: {', '.join(allowed)}"))
            ok = False
        elif key in out:
            problems.append(Problem(path, line, f"option {key} given twice", "keep one"))
            ok = False
        elif key in _TIMES:
            try:
                seconds = parse_time(value)
            except ValueError:
                seconds = -1.0
            if seconds < 0 or (seconds == 0 and key != "failure_timeout"):
                problems.append(Problem(path, line, f"{key} value {value!r} is not valid",
                                        "give seconds (2) or milliseconds (500ms), greater than zero"
                                        + (" (0 = until `hbvip cleanup`)" if key == "failure_timeout" else "")))
                ok = False
            out[key] = seconds
        elif key in _COUNTS:
            low, high = _COUNTS[key]
            if not value.isdigit() or not low <= int(value) <= high:
                problems.append(Problem(path, line, f"{key} value {value!r} is not valid",
                                        f"give a whole number {low}-{high}"))
                ok = False
            else:
                out[key] = int(value)
        else:
            out[key] = value
    return out if ok else None


def parse_health_line(raw: str, path: str, line: int, problems: list[Problem]) -> HealthItem | None:
    """One `check`, `monitor` or `track_interface` line (raw text, quotes intact); None if it is wrong."""
    words = _split(raw)
    if isinstance(words, str):
        problems.append(Problem(path, line, f"cannot split the line: {words}", "close the quote of the command"))
        return None
    kind = words[0]
    if kind == "track_interface":
        if len(words) != 2 or not is_interface_name(words[1]):
            problems.append(Problem(path, line, "track_interface takes one interface name",
                                    "write 'track_interface eth0'"))
            return None
        return TrackInterface(words[1], line)
    if kind == "monitor":
        if len(words) < 2:
            problems.append(Problem(path, line, "monitor needs the resource script's name", f"write '{_MONITOR_FORM}'"))
            return None
        opts = _options(words[2:], ("interval", "timeout", "fall", "restarts", "failure_timeout"), path, line, problems)
        return None if opts is None else Monitor(words[1], line, **opts)  # type: ignore[arg-type]
    if len(words) < 4 or words[2] != "command":
        problems.append(Problem(path, line, "check needs a name and a command", f"write '{_CHECK_FORM}'"))
        return None
    name, command = words[1], words[3]
    if not command.strip():
        problems.append(Problem(path, line, f"check {name} has an empty command", f"write '{_CHECK_FORM}'"))
        return None
    opts = _options(words[4:], ("interval", "timeout", "fall", "rise", "group"), path, line, problems)
    if opts is None:
        return None
    opts.setdefault("timeout", opts.get("interval", Check.timeout))
    return Check(name, command, line, **opts)  # type: ignore[arg-type]


def check_health_items(items: tuple[HealthItem, ...], path: str, problems: list[Problem]) -> None:
    """Rules within hbvip.cf: one check per name, one monitor per script, one line per interface."""
    seen: dict[tuple[str, str], int] = {}
    for item in items:
        key = (("check", item.name) if isinstance(item, Check) else ("monitor", item.script)
               if isinstance(item, Monitor) else ("track_interface", item.interface))
        if key in seen:
            problems.append(Problem(path, item.line, f"{key[0]} {key[1]} is already defined on line {seen[key]}",
                                    "keep one of the two lines"))
        else:
            seen[key] = item.line


def check_health_references(checks: tuple[Check, ...], monitors: tuple[Monitor, ...], group_keys: tuple[str, ...],
                            scripts: tuple[str, ...], path: str, problems: list[Problem]) -> None:
    """Rules across files: a check's `group` is a haresources group, a monitor's script one of its resources."""
    for check in checks:
        if check.group is not None and check.group not in group_keys:
            problems.append(Problem(path, check.line, f"check {check.name}: no haresources group [{check.group}]"
                                    f"{did_you_mean(check.group, group_keys)}",
                                    f"a group is named by its first resource: {', '.join(group_keys) or '(none)'}"))
    for monitor in monitors:
        if monitor.script not in scripts:
            problems.append(Problem(path, monitor.line, f"monitor {monitor.script}: not a resource script in haresources"
                                    f"{did_you_mean(monitor.script, scripts)}",
                                    f"monitor one of: {', '.join(scripts) or '(no scripts in haresources)'}"))
