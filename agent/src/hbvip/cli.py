"""`hbvip` — the command line: run the daemon, check the config, steer and inspect a running pair."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

from . import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, __version__
from .deferred import defer, load_deferred

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (10 M instructions at every start)
if TYPE_CHECKING:
    import argparse
    from typing import Any

# Each command imports what it needs, when it needs it: a command's import cost is its start-up time, and
# the daemon's is its resident memory for life. `run` imports the config and hbvip.boot, and the daemon
# (asyncio with it) after its first heartbeats; the status table is `hbvip status`'s, json is imported by
# the commands that print it, and argparse by every command line but a plain `hbvip run` (`_run_args`).
# pylint: disable=import-outside-toplevel


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
    defer("inspect")            # until the first heartbeats are out (see hbvip.deferred)
    from .boot import Beating, Paths, boot
    from .config import ConfigError, format_problems, load_config

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
        booted = boot(config, paths, log_stderr=args.log_stderr)   # the first heartbeats are out
        # The event loop and the rest of the agent are imported after them, beating on (see hbvip.boot).
        with Beating(booted):
            load_deferred()
            import asyncio

            from . import node  # pylint: disable=unused-import  # noqa: F401
            from .daemon import Agent
        agent = Agent(booted)
        code = asyncio.run(agent.run())
    except KeyboardInterrupt:
        return EXIT_OK
    if agent.exec_next:          # `hbvip restart-in-place`: become the new agent (returns only on failure)
        from .inplace import exec_agent
        print(f"hbvip: restart in place failed: {exec_agent()}", file=sys.stderr)
        return EXIT_RUNTIME
    return code


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
    import json

    from .status_table import render_status

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
    import json

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


#: `hbvip restart-in-place`: the agent refused (the role then hands the groups over and restarts).
EXIT_REFUSED = 3


def cmd_restart_in_place(args: argparse.Namespace) -> int:
    """Ask the agent to restart in place, then wait until its successor answers and say whether it kept
    the groups (it continues the old generation) or had to start afresh."""
    before = _call(args, {"cmd": "status"})
    asked_at = time.monotonic()
    answer = _call(args, {"cmd": "restart-in-place", "check": args.check}) if before is not None else None
    if before is None or answer is None:
        return EXIT_RUNTIME
    message = answer.get("message") or answer.get("error")
    if not answer.get("ok"):
        print(f"hbvip restart-in-place: {message}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"hbvip restart-in-place: {message}")
    if args.check:
        return EXIT_OK
    old = before["status"]
    from .control import call
    while time.monotonic() < asked_at + args.timeout:
        time.sleep(0.05)
        try:
            new = call(Path(args.run_dir), {"cmd": "status"}, timeout=5).get("status")
        except (OSError, ValueError):       # between the two agents: no socket, or nobody answering yet
            continue
        if not new or new["uptime_s"] > time.monotonic() - asked_at:
            continue                        # still the old agent
        if new["generation"] != old["generation"]:
            print(f"hbvip restart-in-place: hbvip {new['version']} did not continue the old agent and started "
                  "afresh (see `restart.not_resumed` in the log)", file=sys.stderr)
            return EXIT_RUNTIME
        print(f"hbvip restart-in-place: hbvip {new['version']} (was {old['version']}) runs, holding {new['hold']} "
              "resources")
        return EXIT_OK
    print(f"hbvip restart-in-place: no new agent answered within {args.timeout:g} s", file=sys.stderr)
    return EXIT_RUNTIME


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

    rp = sub.add_parser("restart-in-place", parents=[common],
                        help="replace the running agent by the installed one without releasing its groups")
    rp.description = ("The running agent hands its state to a new agent (the version installed now) in the same "
                      "process: no group is released, no stop or start script runs, and the peer waits for it "
                      "instead of taking over. Refused (exit 3) unless the pair is settled and the peer is an hbvip "
                      "that grants a restarting node a grace; then hand the groups over (standby) and restart.")
    rp.add_argument("--check", action="store_true", help="only say whether the agent would restart in place now")
    rp.add_argument("--timeout", type=float, default=30.0, help="how long to wait for the new agent (seconds)")
    rp.set_defaults(func=cmd_restart_in_place)


#: The options every command takes (Heartbeat's locations by default), as attribute: default.
COMMON_DEFAULTS: dict[str, str | None] = {"config_dir": "/etc/ha.d", "state_dir": "/var/lib/heartbeat",
                                          "run_dir": "/run/hbvip", "init_dir": "/etc/init.d", "node_name": None}


def _common_options() -> argparse.ArgumentParser:
    """The paths and node name every command takes (Heartbeat's locations by default)."""
    import argparse

    default = COMMON_DEFAULTS
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", default=default["config_dir"],
                        help="ha.cf, haresources, authkeys (default %(default)s)")
    common.add_argument("--state-dir", default=default["state_dir"],
                        help="hb_uuid, hb_generation (default %(default)s)")
    common.add_argument("--run-dir", default=default["run_dir"],
                        help="control socket and pid file (default %(default)s)")
    common.add_argument("--init-dir", default=default["init_dir"], help=argparse.SUPPRESS)
    common.add_argument("--node-name", default=default["node_name"], help="this node's name (default: uname -n)")
    return common


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from .cli_config import config_tools

    common = _common_options()
    p = argparse.ArgumentParser(prog="hbvip", description="Heartbeat-compatible two-node virtual IP agent")
    p.add_argument("--version", action="version", version=f"hbvip {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", parents=[common], help="run the agent in the foreground (systemd Type=notify)")
    r.add_argument("--log-stderr", action="store_true", help="also log to stderr (journald)")
    r.set_defaults(func=cmd_run)

    config_tools(sub, common)

    _add_control_commands(sub, common)

    d = sub.add_parser("decode", parents=[common], help="describe a captured datagram (debug)")
    d.add_argument("file", help="file with the raw UDP payload, or - for stdin")
    d.set_defaults(func=cmd_decode)
    return p


def _run_args(argv: list[str]) -> argparse.Namespace | None:
    """`hbvip run` with only its own options, each spelled out (`--run-dir DIR`, `--run-dir=DIR`,
    `--log-stderr`): the namespace argparse would make of it, without argparse. Importing argparse and
    building every command's parser is a third of the time to the daemon's first heartbeat. Anything
    else (help, abbreviations, a value that looks like an option, a mistake) is None: argparse parses it."""
    if argv[:1] != ["run"]:
        return None
    values: dict[str, object] = {**COMMON_DEFAULTS, "log_stderr": False}
    rest = argv[1:]
    while rest:
        option, has_value, value = rest.pop(0).partition("=")
        name = option[2:].replace("-", "_") if option.startswith("--") and "_" not in option else ""
        if name == "log_stderr" and not has_value:
            values[name] = True
        elif name in COMMON_DEFAULTS and (has_value or (rest and not rest[0].startswith("-"))):
            values[name] = value if has_value else rest.pop(0)
        else:
            return None
    return SimpleNamespace(command="run", func=cmd_run, **values)  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _run_args(argv) or build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
