# -*- coding: utf-8 -*-
# Copyright: hbvip team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private helper of the hb_vip module: the `check` lines of hbvip.cf that guard the module's group.

A check belongs to the group it names (`check NAME command "..." ... group KEY`); hb_vip owns the check
lines of its own group and keeps every other line of the file. The agent owns the grammar: this file
writes lines in the form `hbvip extensions --json` reads back, and compares by the agent's parse of both,
never by text, so a hand-written equivalent line is not rewritten. Pure: text and JSON in, a CheckPlan out.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: The options of a check besides its name and command, in the order hbvip.cf's form has them.
CHECK_OPTIONS = ("interval", "timeout", "fall", "rise")


@dataclass(frozen=True)
class CheckPlan:
    """hbvip.cf before and after; after == before when the group's checks already say what is wanted."""

    before: str
    after: str
    messages: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _time(seconds: float) -> str:
    """A parsed time back in Heartbeat's units: 2 -> `2`, 0.5 -> `500ms`."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def check_line(check: dict[str, Any], group: str) -> str:
    """One `check` line for the group. `check` is a task's dict (times as written: `2`, `500ms`) or the
    agent's parse of a line (times in seconds, every option present)."""
    words = ["check", check["name"], "command", shlex.quote(check["command"])]
    for option in CHECK_OPTIONS:
        value = check.get(option)
        if value is not None:
            words += [option, _time(value) if isinstance(value, float) else str(value)]
    words += ["group", shlex.quote(group)]
    return " ".join(words) + "\n"


def _meaning(check: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in check.items() if k != "line"}


def plan_checks(text: str, parsed: dict[str, Any], old_key: str | None, new_key: str | None,
                wanted: list[dict[str, Any]] | None, parse: Callable[[str], dict[str, Any]]) -> CheckPlan:
    """The new hbvip.cf: the check lines of the group `old_key` replaced by those of `new_key`.

    wanted: the task's checks (None = keep the group's own, renamed to `new_key` if its key changes);
    new_key None: the group goes (state=absent), and its checks with it. parse: the agent's parse of
    a candidate hbvip.cf text (`hbvip extensions --json` on a scratch file).
    """
    mine = [c for c in parsed.get("checks", []) if old_key is not None and c.get("group") == old_key]
    if new_key is None:
        lines = []
    elif wanted is None:
        if old_key == new_key or not mine:
            return CheckPlan(text, text)
        lines = [check_line(c, new_key) for c in mine]
    else:
        lines = [check_line(c, new_key) for c in wanted]
    if not mine and not lines:
        return CheckPlan(text, text)
    if lines:
        got = parse("".join(lines))["checks"]
        if [_meaning(c) for c in got] == [_meaning(c) for c in mine]:
            return CheckPlan(text, text)
    physical = text.splitlines(keepends=True)
    if physical and not physical[-1].endswith("\n"):
        physical[-1] += "\n"
    drop = {c["line"] - 1 for c in mine}
    at = min(drop) if drop else len(physical)
    after = [line for i, line in enumerate(physical[:at]) if i not in drop] + lines + \
        [line for i, line in enumerate(physical[at:], start=at) if i not in drop]
    names = ", ".join(c["name"] for c in mine) or "none"
    if new_key is None:
        message = f"remove the checks of {old_key} ({names})"
    else:
        message = f"checks of {new_key}: {', '.join(line.split()[1] for line in lines) or 'none'} (were: {names})"
    return CheckPlan(text, "".join(after), [message])
