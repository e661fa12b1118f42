"""`hbvip` — the command line: run the daemon, check the config, steer and inspect a running pair."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .config import ConfigError, errors, format_problems, load_config, parse_haresources

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2

# The daemon (and with it asyncio) is imported by the commands that need it, not by `hbvip status`:
# a command's import cost is its start-up time, and the daemon's is its resident memory for life.
# Likewise the status table is imported by `hbvip status` only.


def _without_openssl() -> None:
    """Keep OpenSSL out of the daemon: it costs 4.5 MB of RSS for features the daemon does not use.

    asyncio imports `ssl` only to offer TLS, which the agent never speaks: libssl and the module are
    about 1 MB. hashlib and hmac use OpenSSL's `_hashlib` when they can, and its libcrypto is 3.5 MB
    resident; without it they use CPython's built-in md5/sha1/sha256 (same digests, fast enough for a
    few heartbeats a second). Both importers treat the module as optional (`try: import ... except
    ImportError`), so marking it absent in sys.modules is the documented way to say "not here". Only
    `hbvip run` does this, and only for a module nobody imported yet; the CLI commands keep OpenSSL.
    Measured on a lab pair at keepalive 100 ms (VmRSS of a settled agent): 26.1 MB with, 22.4 MB without.
    """
    for name in ("ssl", "_hashlib"):
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # the import system's "known to be absent"


def cmd_run(args: argparse.Namespace) -> int:
    _without_openssl()
    import asyncio  # pylint: disable=import-outside-toplevel

    from .daemon import Agent, Paths  # pylint: disable=import-outside-toplevel

    paths = Paths(Path(args.config_dir), Path(args.state_dir), Path(args.run_dir), Path(args.init_dir))
    try:
        config = load_config(paths.config_dir, args.node_name, init_dir=paths.init_dir)
    except ConfigError as exc:
        print(format_problems(exc.problems), file=sys.stderr)
        print("hbvip: configuration errors: not starting", file=sys.stderr)
        return EXIT_CONFIG
    for warning in config.warnings:
        print(str(warning), file=sys.stderr)
    try:
        return asyncio.run(Agent(config, paths, log_stderr=args.log_stderr).run())
    except KeyboardInterrupt:
        return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the files as they are, or with single files replaced (the role's `validate:` hook),
    then lint them against this host (interfaces, names, scripts, ARP) unless --no-lint."""
    overrides = {"ha.cf": args.ha_cf, "haresources": args.haresources, "authkeys": args.authkeys}
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
    problems = [dataclasses.replace(p, path=origin.get(p.path, p.path)) for p in problems]
    return _report(problems, notes, args.json, args.config_dir)


def _check_alone(overrides: dict[str, str | None], as_json: bool) -> int:
    """check-config --file-only: each given file against its own grammar, without its siblings.

    A `validate:` hook sees one new file while the other new files are not written yet; checked with
    the old siblings a change that spans files (a node renamed in ha.cf and haresources) would be
    refused. The whole set is checked before (`hbvip plan-config`); this is the host's own parser
    confirming the file it is about to install.
    """
    from .config import parse_authkeys, parse_hacf  # pylint: disable=import-outside-toplevel

    parsers = {"ha.cf": parse_hacf, "haresources": parse_haresources, "authkeys": parse_authkeys}
    problems = []
    for name, path in overrides.items():
        if path:
            problems += parsers[name](Path(path).read_text(encoding="utf-8", errors="surrogateescape"), path)[1]
    return _report(problems, [], as_json, "the given files")


def _report(problems: list[Any], notes: list[str], as_json: bool, what: str) -> int:
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
    from .config.plan import check_set, merge_haresources  # pylint: disable=import-outside-toplevel

    request = json.load(sys.stdin)
    config_dir = request.get("config_dir", args.config_dir)
    res = request["haresources"]
    merged = merge_haresources(res.get("current"), res.get("header", ""), res["lines"], res.get("owned_vips", []),
                               exclusive=bool(res.get("exclusive")), path=f"{config_dir}/haresources")
    files = {**request["files"], "haresources": merged.text}
    problems = list(merged.problems) + check_set(files, request.get("node_name") or os.uname().nodename, config_dir)
    ok = not any(p.is_error for p in problems)
    print(json.dumps({"ok": ok, "haresources": merged.text, "owned_vips": list(merged.owned_vips),
                      "kept": list(merged.kept), "replaced": list(merged.replaced),
                      "problems": [{"path": p.path, "line": p.line, "severity": p.severity, "message": p.message,
                                    "fix": p.fix, "text": str(p)} for p in problems]}, indent=2))
    return EXIT_OK if ok else EXIT_CONFIG


def _call(args: argparse.Namespace, request: dict[str, Any]) -> dict[str, Any] | None:
    from .control import call
    try:
        return call(Path(args.run_dir), request, timeout=getattr(args, "timeout", 60) + 30)
    except FileNotFoundError:
        print(f"hbvip: no agent running (no control socket in {args.run_dir})", file=sys.stderr)
    except PermissionError:
        print("hbvip: permission denied: the control socket is root-only (run as root)", file=sys.stderr)
    except ConnectionRefusedError:
        print(f"hbvip: the agent is not answering on {args.run_dir}/control.sock", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"hbvip: control socket error: {exc}", file=sys.stderr)
    return None


def cmd_status(args: argparse.Namespace) -> int:
    from .status_table import render_status  # pylint: disable=import-outside-toplevel

    while True:
        answer = _call(args, {"cmd": "status"})
        if answer is None:
            return EXIT_RUNTIME
        if not answer.get("ok"):
            print(f"hbvip: {answer.get('error')}", file=sys.stderr)
            return EXIT_RUNTIME
        if args.json:
            print(json.dumps(answer["status"], indent=2))
        else:
            if args.watch:
                print("\033[H\033[J", end="")
            print(render_status(answer["status"]))
        if not args.watch:
            return EXIT_OK
        time.sleep(args.interval)


def cmd_move(args: argparse.Namespace) -> int:
    answer = _call(args, {"cmd": args.command, "which": args.which, "timeout": args.timeout})
    if answer is None:
        return EXIT_RUNTIME
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print(f"hbvip {args.command} {args.which}: {answer.get('message') or answer.get('error')}")
    return EXIT_OK if answer.get("ok") else EXIT_RUNTIME


def cmd_reload(args: argparse.Namespace) -> int:
    answer = _call(args, {"cmd": "reload"})
    if answer is None:
        return EXIT_RUNTIME
    print(f"hbvip reload: {answer.get('message') or answer.get('error')}")
    return EXIT_OK if answer.get("ok") else EXIT_CONFIG


def cmd_cleanup(args: argparse.Namespace) -> int:
    answer = _call(args, {"cmd": "cleanup", "group": args.group})
    if answer is None:
        return EXIT_RUNTIME
    print(f"hbvip cleanup: {answer.get('message') or answer.get('error')}")
    return EXIT_OK if answer.get("ok") else EXIT_RUNTIME


def cmd_haresources(args: argparse.Namespace) -> int:
    """Print the parsed groups of a haresources file with the physical lines each one spans.

    Tools that edit one group in place (the Ansible module hb_vip) keep every other line and
    comment of the file; they take the grammar from here rather than parse it a second time.
    """
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


def cmd_rename_node(args: argparse.Namespace) -> int:
    """Rename nodes in ha.cf and haresources through the agent's grammar (see config/rename.py)."""
    from .config import rename  # pylint: disable=import-outside-toplevel

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
            "problems": [dataclasses.asdict(p) for p in problems]}, indent=2))
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
        raise argparse.ArgumentTypeError(f"{text!r} is not OLD=NEW")
    return text


def cmd_decode(args: argparse.Namespace) -> int:
    from .wire.decode_cli import describe
    data = Path(args.file).read_bytes() if args.file != "-" else sys.stdin.buffer.read()
    print(describe(data, None))
    return EXIT_OK


def _add_control_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The commands that talk to the running agent over its control socket."""
    s = sub.add_parser("status", parents=[common], help="this node, the peer, who holds each group")
    s.add_argument("--json", action="store_true")
    s.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    s.add_argument("--interval", type=float, default=1.0)
    s.set_defaults(func=cmd_status)

    for name, text in (("standby", "give resources to the peer (hb_standby)"),
                       ("takeover", "take resources from the peer (hb_takeover)")):
        m = sub.add_parser(name, parents=[common], help=text)
        m.add_argument("which", nargs="?", default="all", choices=("all", "local", "foreign"))
        m.add_argument("--timeout", type=float, default=60.0)
        m.add_argument("--json", action="store_true")
        m.set_defaults(func=cmd_move)

    rl = sub.add_parser("reload", parents=[common], help="re-read the configuration (same as SIGHUP)")
    rl.set_defaults(func=cmd_reload)

    cl = sub.add_parser("cleanup", parents=[common],
                        help="forget a group's monitor failures here (Pacemaker's crm_resource --cleanup)")
    cl.add_argument("group", help="the group's key: its first resource as written in haresources")
    cl.set_defaults(func=cmd_cleanup)


def _common_options() -> argparse.ArgumentParser:
    """The paths and node name every command takes (Heartbeat's locations by default)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", default="/etc/ha.d",
                        help="ha.cf, haresources, authkeys (default %(default)s)")
    common.add_argument("--state-dir", default="/var/lib/heartbeat",
                        help="hb_uuid, hb_generation (default %(default)s)")
    common.add_argument("--run-dir", default="/run/hbvip", help="control socket and pid file (default %(default)s)")
    common.add_argument("--init-dir", default="/etc/init.d", help=argparse.SUPPRESS)
    common.add_argument("--node-name", default=None, help="this node's name (default: uname -n)")
    return common


def _config_tools(sub: Any, common: argparse.ArgumentParser) -> None:
    """The subcommands that read or edit the files in /etc/ha.d for tools (the role, the module, the
    rename), through the agent's one grammar."""
    c = sub.add_parser("check-config", parents=[common], help="check ha.cf, haresources, authkeys; exit 2 on errors")
    c.add_argument("--json", action="store_true")
    c.add_argument("--ha-cf", metavar="FILE", help="check FILE in place of ha.cf (for validate: hooks)")
    c.add_argument("--haresources", metavar="FILE")
    c.add_argument("--authkeys", metavar="FILE")
    c.add_argument("--no-lint", action="store_true",
                   help="parse only; skip the checks against this host (interfaces, names, scripts, ARP)")
    c.add_argument("--no-arp", action="store_true", help="skip the ARP probe for addresses already in use")
    c.add_argument("--file-only", action="store_true",
                   help="check only the files given with --ha-cf/--haresources/--authkeys, each on its own grammar")
    c.set_defaults(func=cmd_check_config)

    pc = sub.add_parser("plan-config", parents=[common],
                        help="merge a tool's haresources groups into the file and check the new set (JSON on stdin)")
    pc.set_defaults(func=cmd_plan_config)

    h = sub.add_parser("haresources", parents=[common],
                       help="the parsed groups of haresources with their line spans (for tools)")
    h.add_argument("--file", metavar="FILE", help="parse FILE instead of <config-dir>/haresources")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_haresources)

    rn = sub.add_parser("rename-node", parents=[common],
                        help="rename nodes in ha.cf and haresources, changing no byte but the names")
    rn.add_argument("renames", nargs="+", type=_rename_pair, metavar="OLD=NEW")
    rn.add_argument("--check", action="store_true", help="write nothing; say what would change")
    rn.add_argument("--diff", action="store_true", help="print a unified diff of each file")
    rn.add_argument("--json", action="store_true", help="changed, the new contents, problems (and diffs) as JSON")
    rn.set_defaults(func=cmd_rename_node)


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    p = argparse.ArgumentParser(prog="hbvip", description="Heartbeat-compatible two-node virtual IP agent")
    p.add_argument("--version", action="version", version=f"hbvip {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", parents=[common], help="run the agent in the foreground (systemd Type=notify)")
    r.add_argument("--log-stderr", action="store_true", help="also log to stderr (journald)")
    r.set_defaults(func=cmd_run)

    _config_tools(sub, common)

    _add_control_commands(sub, common)

    d = sub.add_parser("decode", parents=[common], help="describe a captured datagram (debug)")
    d.add_argument("file", help="file with the raw UDP payload, or - for stdin")
    d.set_defaults(func=cmd_decode)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
