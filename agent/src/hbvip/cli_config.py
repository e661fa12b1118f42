"""`hbvip` commands for tools: check, plan and parse the files in /etc/ha.d through the agent's one grammar.

The role (`validate:`, `plan-config`), the module hb_vip (`haresources`, `extensions`, `check-config`)
and the rename read and edit the files with these rather than parse them a second time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME
from .config import ConfigError, errors, format_problems, load_config, parse_haresources
from .records import asdict, replace

TYPE_CHECKING = False   # as in hbvip.cli: `hbvip run` imports this module, and neither typing nor argparse
if TYPE_CHECKING:
    import argparse
    from typing import Any
# json is imported by the commands that print it. pylint: disable=import-outside-toplevel

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_RUNTIME", "config_tools"]


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the files as they are, or with single files replaced (the role's `validate:` hook),
    then lint them against this host (interfaces, names, scripts, ARP) unless --no-lint."""
    overrides = {"ha.cf": args.ha_cf, "haresources": args.haresources, "authkeys": args.authkeys,
                 "hbvip.cf": args.hbvip_cf}
    if args.file_only:
        return _check_alone(overrides, args.json)
    config_dir = Path(args.config_dir)
    origin: dict[str, str] = {}
    tmp = None
    if any(overrides.values()):
        import shutil  # pylint: disable=import-outside-toplevel
        import tempfile  # pylint: disable=import-outside-toplevel

        tmp = tempfile.TemporaryDirectory(prefix="hbvip-check-")
        staged = Path(tmp.name)
        for name in ("ha.cf", "haresources", "authkeys", "hbvip.cf"):
            src = Path(overrides[name]) if overrides.get(name) else config_dir / name
            if src.exists():
                shutil.copy2(src, staged / name)
                origin[str(staged / name)] = str(src)
        if (config_dir / "resource.d").is_dir():
            os.symlink((config_dir / "resource.d").resolve(), staged / "resource.d")
        config_dir = staged
    notes: list[str] = []
    try:
        config = load_config(config_dir, args.node_name, init_dir=Path(args.init_dir))
        problems = list(config.warnings)
        if not args.no_lint:
            import asyncio  # pylint: disable=import-outside-toplevel

            from .lint import lint
            report = asyncio.run(lint(config, init_dir=Path(args.init_dir), run_dir=Path(args.run_dir),
                                      arp=not args.no_arp))
            problems += sorted(report.problems, key=lambda p: (p.path, p.line or 0))
            notes = report.notes
    except ConfigError as exc:
        problems = exc.problems
    finally:
        if tmp is not None:
            tmp.cleanup()
    # Name the files the operator gave, not the staging copies.
    problems = [replace(p, path=origin.get(p.path, p.path)) for p in problems]
    return _report(problems, notes, args.json, args.config_dir)


def _check_alone(overrides: dict[str, str | None], as_json: bool) -> int:
    """check-config --file-only: each given file against its own grammar, without its siblings.

    A `validate:` hook sees one new file while the other new files are not written yet; checked with
    the old siblings a change that spans files (a node renamed in ha.cf and haresources) would be
    refused. The whole set is checked before (`hbvip plan-config`); this is the host's own parser
    confirming the file it is about to install.
    """
    from .config import parse_authkeys, parse_hacf  # pylint: disable=import-outside-toplevel
    from .config.extensions import parse_extensions  # pylint: disable=import-outside-toplevel

    parsers = {"ha.cf": parse_hacf, "haresources": parse_haresources, "authkeys": parse_authkeys,
               "hbvip.cf": parse_extensions}
    problems = []
    for name, path in overrides.items():
        if path:
            problems += parsers[name](Path(path).read_text(encoding="utf-8", errors="surrogateescape"), path)[1]
    return _report(problems, [], as_json, "the given files")


def _report(problems: list[Any], notes: list[str], as_json: bool, what: str) -> int:
    import json

    ok = not any(p.is_error for p in problems)
    if as_json:
        print(json.dumps({"ok": ok, "problems": [
            {"path": p.path, "line": p.line, "severity": p.severity, "message": p.message, "fix": p.fix}
            for p in problems], "notes": notes}, indent=2))
    else:
        if problems:
            print(format_problems(problems), file=sys.stderr if not ok else sys.stdout)
        for note in notes:
            print(f"note: {note}")
        if ok:
            print(f"{what}: configuration OK" + (f" ({len(problems)} warning(s))" if problems else ""))
    return EXIT_OK if ok else EXIT_CONFIG


def cmd_plan_config(args: argparse.Namespace) -> int:
    """The new haresources (the tool's groups replaced, every other line kept) and the problems of
    the whole new set, from a JSON request on stdin; see hbvip.config.plan. Writes nothing."""
    import json

    from .config.plan import check_set, merge_extensions, merge_haresources

    request = json.load(sys.stdin)
    config_dir = request.get("config_dir", args.config_dir)
    res = request["haresources"]
    merged = merge_haresources(res.get("current"), res.get("header", ""), res["lines"], res.get("owned_vips", []),
                               exclusive=bool(res.get("exclusive")), path=f"{config_dir}/haresources")
    files = {**request["files"], "haresources": merged.text}
    ext = request.get("hbvip_cf")
    if ext is not None:  # the tool's hbvip.cf plus the checks of the groups that stay someone else's
        files["hbvip.cf"] = merge_extensions(ext.get("current"), ext["text"], merged.kept, f"{config_dir}/hbvip.cf")
    problems = list(merged.problems) + check_set(files, request.get("node_name") or os.uname().nodename, config_dir)
    ok = not any(p.is_error for p in problems)
    print(json.dumps({"ok": ok, "haresources": merged.text, "owned_vips": list(merged.owned_vips),
                      "kept": list(merged.kept), "replaced": list(merged.replaced), "hbvip_cf": files.get("hbvip.cf"),
                      "problems": [{"path": p.path, "line": p.line, "severity": p.severity, "message": p.message,
                                    "fix": p.fix, "text": str(p)} for p in problems]}, indent=2))
    return EXIT_OK if ok else EXIT_CONFIG


def cmd_haresources(args: argparse.Namespace) -> int:
    """Print the parsed groups of a haresources file with the physical lines each one spans.

    Tools that edit one group in place (the Ansible module hb_vip) keep every other line and
    comment of the file; they take the grammar from here rather than parse it a second time.
    """
    import json

    path = Path(args.file) if args.file else Path(args.config_dir) / "haresources"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"hbvip: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_RUNTIME
    groups, problems = parse_haresources(text, str(path))
    if args.json:
        from .views import haresources_view  # pylint: disable=import-outside-toplevel

        print(json.dumps(haresources_view(str(path), groups, problems), indent=2))
    else:
        for g in groups:
            print(f"{path}:{g.line}-{g.end_line}: {g.home_node} {' '.join(r.spec for r in g.resources)}")
        if problems:
            print(format_problems(problems), file=sys.stderr)
    return EXIT_CONFIG if errors(problems) else EXIT_OK


def cmd_extensions(args: argparse.Namespace) -> int:
    """Print the health directives of an hbvip.cf with their lines and values (JSON for tools).

    hb_vip edits the `check` lines of the group it manages and keeps every other line; it reads
    what each line means from here (the agent's parse) instead of parsing hbvip.cf itself.
    """
    import json

    from .config.extensions import parse_extensions  # pylint: disable=import-outside-toplevel
    from .views import extensions_view  # pylint: disable=import-outside-toplevel

    path = Path(args.file) if args.file else Path(args.config_dir) / "hbvip.cf"
    try:
        text = path.read_text(encoding="utf-8") if path.exists() or args.file else ""
    except OSError as exc:
        print(f"hbvip: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_RUNTIME
    ext, problems = parse_extensions(text, str(path))
    view = extensions_view(str(path), path.exists(), ext, problems)
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        for check in ext.checks:
            print(f"{path}:{check.line}: check {check.name} group {check.group or '(all)'}")
        if problems:
            print(format_problems(problems), file=sys.stderr)
    return EXIT_CONFIG if errors(problems) else EXIT_OK


def cmd_rename_node(args: argparse.Namespace) -> int:
    """Rename nodes in ha.cf and haresources through the agent's grammar (see config/rename.py)."""
    import json

    from .config import rename

    renames = dict(pair.split("=", 1) for pair in args.renames)
    try:
        texts, paths = rename.read_files(Path(args.config_dir))
    except OSError as exc:
        print(f"hbvip: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_RUNTIME
    edits, problems = rename.plan_rename(texts, paths, renames)
    if not problems and not args.check:
        for edit in edits:
            if edit.changed:
                rename.write_atomically(edit)
    changed = any(e.changed for e in edits)
    if args.json:
        print(json.dumps({"changed": changed, "check": args.check, "renames": renames, "files": [
            {"path": e.path, "changed": e.changed, "lines": list(e.lines), "content": e.after,
             **({"diff": e.diff()} if args.diff else {})} for e in edits],
            "problems": [asdict(p) for p in problems]}, indent=2))
    elif problems:
        print(format_problems(problems), file=sys.stderr)
    else:
        for edit in edits:
            if args.diff:
                print(edit.diff(), end="")
            lines = ", ".join(map(str, edit.lines))
            print(f"{edit.path}: " + (f"renamed on line(s) {lines}" if edit.changed else "nothing to rename")
                  + (" (check: not written)" if args.check and edit.changed else ""))
    return EXIT_CONFIG if problems else EXIT_OK


def _rename_pair(text: str) -> str:
    if text.count("=") != 1 or not all(text.split("=")):
        import argparse
        raise argparse.ArgumentTypeError(f"{text!r} is not OLD=NEW")
    return text


def config_tools(sub: Any, common: argparse.ArgumentParser) -> None:
    """The subcommands that read or edit the files in /etc/ha.d for tools (the role, the module, the
    rename), through the agent's one grammar."""
    c = sub.add_parser("check-config", parents=[common], help="check ha.cf, haresources, authkeys; exit 2 on errors")
    c.add_argument("--json", action="store_true")
    c.add_argument("--ha-cf", metavar="FILE", help="check FILE in place of ha.cf (for validate: hooks)")
    c.add_argument("--haresources", metavar="FILE")
    c.add_argument("--authkeys", metavar="FILE")
    c.add_argument("--hbvip-cf", metavar="FILE")
    c.add_argument("--no-lint", action="store_true",
                   help="parse only; skip the checks against this host (interfaces, names, scripts, ARP)")
    c.add_argument("--no-arp", action="store_true", help="skip the ARP probe for addresses already in use")
    c.add_argument("--file-only", action="store_true",
                   help="check only the files given with --ha-cf/--haresources/--authkeys/--hbvip-cf, each on its own grammar")
    c.set_defaults(func=cmd_check_config)

    pc = sub.add_parser("plan-config", parents=[common],
                        help="merge a tool's haresources groups into the file and check the new set (JSON on stdin)")
    pc.set_defaults(func=cmd_plan_config)

    h = sub.add_parser("haresources", parents=[common],
                       help="the parsed groups of haresources with their line spans (for tools)")
    h.add_argument("--file", metavar="FILE", help="parse FILE instead of <config-dir>/haresources")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_haresources)

    x = sub.add_parser("extensions", parents=[common],
                       help="the parsed check/monitor/track_interface lines of hbvip.cf (for tools)")
    x.add_argument("--file", metavar="FILE", help="parse FILE instead of <config-dir>/hbvip.cf")
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=cmd_extensions)

    rn = sub.add_parser("rename-node", parents=[common],
                        help="rename nodes in ha.cf and haresources, changing no byte but the names")
    rn.add_argument("renames", nargs="+", type=_rename_pair, metavar="OLD=NEW")
    rn.add_argument("--check", action="store_true", help="write nothing; say what would change")
    rn.add_argument("--diff", action="store_true", help="print a unified diff of each file")
    rn.add_argument("--json", action="store_true", help="changed, the new contents, problems (and diffs) as JSON")
    rn.set_defaults(func=cmd_rename_node)
