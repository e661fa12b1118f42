"""`python -m lab up|down|list`: a lab by hand (demo, debugging) and the cleanup of crashed runs."""
from __future__ import annotations

import argparse
import sys

from lab import registry
from lab.lab import Lab
from lab.systemd import SystemdHost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a lab that stays up until `down`")
    up.add_argument("--prefix", default="hbv")
    up.add_argument("--net", type=int, default=None, help="10.99.NET.0/24 (default: a free one)")
    up.add_argument("--hosts", default="server1,server2")
    up.add_argument("--ssh", action="store_true")
    up.add_argument("--systemd", action="store_true", help="boot the hosts with systemd as PID 1 (implies --ssh)")
    down = sub.add_parser("down", help="tear labs down")
    which = down.add_mutually_exclusive_group(required=True)
    which.add_argument("--prefix")
    which.add_argument("--all", action="store_true",
                       help="every detached or orphaned lab (a lab whose test process still runs is kept)")
    down.add_argument("--force", action="store_true", help="with --all: also labs of running processes")
    sub.add_parser("list", help="labs in the registry")
    args = parser.parse_args(argv)

    if args.cmd == "up":
        lab = Lab(args.prefix, args.net, tuple(args.hosts.split(",")), ssh=args.ssh, detached=True,
                  systemd=args.systemd)
        lab.start()
        assert lab.client is not None
        print(f"lab {lab.prefix} up: net 10.99.{lab.net}.0/24, vip {lab.vip}, dir {lab.dir}")
        for host in lab.hosts.values():
            enter = f"-t {host.leader} -a" if isinstance(host, SystemdHost) else f"-t {host.anchor_pid} -n -m -u"
            print(f"  {host.name:10} {host.address:15} nsenter {enter}")
        print(f"  {'client':10} {lab.client.address:15} ip netns exec {lab.client.netns}")
        if lab.ssh_key:
            print(f"  ssh key {lab.ssh_key}")
        return 0
    if args.cmd == "list":
        for rec in registry.records():
            state = "live" if rec.is_live() else "stale"
            print(f"{rec.prefix}\tnet {rec.net}\t{state}\towner {rec.owner_pid or 'detached'}")
        return 0
    if args.all:
        targets = [
            r for r in registry.records()
            if args.force or r.owner_pid is None or not r.is_live()
        ]
    else:
        targets = [r for r in registry.records() if r.prefix == args.prefix]
    if not targets:
        print(f"no lab {args.prefix!r} in {registry.REGISTRY}" if not args.all else "no labs")
        return 0 if args.all else 1
    failed = False
    for rec in targets:
        problems = registry.teardown(rec)
        for p in problems:
            print(f"{rec.prefix}: {p}", file=sys.stderr)
        failed |= bool(problems)
        print(f"{rec.prefix}: {'incomplete' if problems else 'down'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
