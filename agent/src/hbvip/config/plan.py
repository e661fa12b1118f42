"""plan_config: the files a provisioning tool is about to write, merged and checked as one set.

The Ansible role renders ha.cf, authkeys and its own haresources groups, but haresources is shared:
`hb_vip` adds groups at run time that the role must keep. The role therefore never writes its
template over the file; it asks this module for the new file: the groups the role owns are replaced
by the ones it renders, every other line is kept as it is, and the whole new set is checked with the
same parsers the daemon uses before anything lands. Which groups are the role's is decided by their
virtual IPs, as parsed here: the role's VIPs of this run plus those it recorded on its last run (so a
changed VIP does not leave its old group behind). Nothing here touches a host: text in, text out.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hbvip.config.extensions import parse_extensions
from hbvip.config.haresources import ResourceGroup, parse_haresources
from hbvip.config.lexer import Comments, logical_lines
from hbvip.config.loader import AUTHKEYS, EXTENSIONS, HACF, HARESOURCES, load_config
from hbvip.config.problems import ConfigError, Problem
from hbvip.records import dataclass


@dataclass(frozen=True)
class Merged:
    """The new haresources text and what happened to each group of the old one."""

    text: str
    owned_vips: tuple[str, ...]
    """The VIPs of the groups the tool wrote: its record for the next run."""
    kept: tuple[str, ...]
    """Keys of the groups that are not the tool's, kept line for line."""
    replaced: tuple[str, ...]
    """Keys of the tool's groups of the old file (replaced by its own lines, or dropped)."""
    problems: tuple[Problem, ...]


def _vips(group: ResourceGroup) -> set[str]:
    return {v.address for v in group.vips}


def merge_haresources(current: str | None, header: str, lines: list[str], owned_vips: list[str], *,
                      exclusive: bool, path: str) -> Merged:
    """The tool's header and group lines, then every line of `current` that is not the tool's.

    The tool owns the comment lines above the first group (its header) and every group that serves
    one of its VIPs (this run's or a recorded one); with `exclusive` it owns the whole file. Lines
    the parser could not read are kept, so the check of the new set names them instead of losing them.
    """
    mine_text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    mine, problems = parse_haresources(mine_text, path)
    owned = set(owned_vips)
    for group in mine:
        owned |= _vips(group)
    body: list[str] = []
    kept: list[str] = []
    replaced: list[str] = []
    if current and not exclusive:
        physical = current.splitlines(keepends=True)
        first = next(iter(logical_lines(current, Comments.WORD_START, continuation=True)), None)
        start = first.line - 1 if first is not None else len(physical)
        groups = parse_haresources(current, path)[0]  # what cannot be parsed is kept and reported below
        drop: set[int] = set()
        for group in groups:
            if _vips(group) & owned:
                replaced.append(group.key)
                drop.update(range(group.line - 1, group.end_line))
            else:
                kept.append(group.key)
        body = [text for number, text in enumerate(physical) if number >= start and number not in drop]
        if body and not body[-1].endswith("\n"):
            body[-1] += "\n"
    elif current and exclusive:
        replaced = [g.key for g in parse_haresources(current, path)[0]]
    vips = sorted({v for group in mine for v in _vips(group)})
    return Merged(header + mine_text + "".join(body), tuple(vips), tuple(kept), tuple(replaced), tuple(problems))


def merge_extensions(current: str | None, mine: str, kept_groups: tuple[str, ...], path: str) -> str:
    """The tool's hbvip.cf, then the `check` lines of `current` that name a group it keeps.

    hbvip.cf is the tool's file except for the checks hb_vip declared for its own groups (a check
    belongs to the group it names): those stay, line for line, as long as their group stays in
    haresources. A check of a group that leaves haresources leaves with it (it would not load).
    """
    if not current:
        return mine
    ext, _problems = parse_extensions(current, path)
    raw = current.splitlines()
    kept = [raw[c.line - 1] + "\n" for c in ext.checks if c.group is not None and c.group in kept_groups]
    if mine and not mine.endswith("\n"):
        mine += "\n"
    return mine + "".join(kept)


def check_set(files: dict[str, str], node_name: str, config_dir: str) -> list[Problem]:
    """Every problem of ha.cf + haresources + authkeys (+ hbvip.cf) as one set, as the daemon would load them.

    Resource scripts are not looked up (this may run on the controller, where the host's scripts
    are not); the host's own `hbvip check-config` does that. Problems name config_dir, not the
    scratch directory the set was checked in.
    """
    with tempfile.TemporaryDirectory(prefix="hbvip-plan-") as tmp:
        for name in (HACF, HARESOURCES, AUTHKEYS, EXTENSIONS):
            if name in files:
                (Path(tmp) / name).write_text(files[name], encoding="utf-8", errors="surrogateescape")
        try:
            config = load_config(Path(tmp), node_name, check_permissions=False, check_scripts=False)
            problems = list(config.warnings)
        except ConfigError as exc:
            problems = exc.problems
        return [Problem(p.path.replace(tmp, config_dir.rstrip("/"), 1), p.line, p.message, p.fix, p.severity)
                for p in problems]
