"""What one `hbvip run` costs from exec to its first heartbeat and to a running node, without a lab.

`python -m bench.bootcost [--trials N] [--python PATH] [--valgrind]` (root: it makes two network
namespaces joined by a veth, with a peer that never answers). Each trial execs PATH (default: this
interpreter) running `hbvip.cli:main` as the console script does, with an audit hook that notes two
moments and exits at the second: **heartbeat**, the first `sendto` to the heartbeat port (`init`), and
**ready**, the bind of the control socket (the node is built and the loop runs). It prints wall time
(from just before the exec, same monotonic clock) and CPU time (the process's rusage), median / min /
max. `--valgrind` adds the instructions executed to each moment (one callgrind run each): unlike wall
and CPU times, they do not move with the machine's load, so they compare two versions exactly.

`--python` takes a venv's interpreter, e.g. one made as the role makes it (`python3 -m venv
--without-pip V; V/bin/python PIP.whl/pip install agent/`), to measure what the hosts run.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000
HOOK = """
import os, resource, sys, time
MARK, OUT, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
_seen = set()
def _hook(event, args):
    hit = (event == "socket.sendto" and isinstance(args[1], tuple) and args[1][1] == PORT and "heartbeat") or \\
          (event == "socket.bind" and isinstance(args[1], str) and args[1].endswith("control.sock") and "ready")
    if hit and hit not in _seen:
        _seen.add(hit)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        with open(OUT, "a") as f:
            f.write(f"{hit} {time.monotonic():.6f} {ru.ru_utime + ru.ru_stime:.6f}\\n")
        if hit == MARK:
            os._exit(0)
sys.addaudithook(_hook)
sys.argv = ["hbvip"] + sys.argv[4:]
from hbvip.cli import main
sys.exit(main())
"""
HA_CF = """logfile {d}/ha-log
autojoin none
ucast veth0 10.99.253.1
ucast veth0 10.99.253.2
udpport 694
keepalive 50ms
warntime 100ms
deadtime 150ms
initdead 300ms
node server1 server2
auto_failback on
"""


class Netns:
    """Two namespaces joined by a veth: server1's (where the agent runs) and a silent peer's."""

    def __init__(self) -> None:
        self.names = (f"bc{os.getpid()}a", f"bc{os.getpid()}b")

    def __enter__(self) -> Netns:
        a, b = self.names
        for cmd in (["netns", "add", a], ["netns", "add", b],
                    ["-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", b],
                    ["-n", a, "addr", "add", "10.99.253.1/24", "dev", "veth0"],
                    ["-n", b, "addr", "add", "10.99.253.2/24", "dev", "veth1"],
                    ["-n", a, "link", "set", "veth0", "up"], ["-n", b, "link", "set", "veth1", "up"],
                    ["-n", a, "link", "set", "lo", "up"]):
            subprocess.run(["ip", *cmd], check=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], check=False)

    def enter(self) -> None:
        """preexec_fn: the child joins server1's namespace (Python 3.11 has no os.setns)."""
        fd = os.open(f"/run/netns/{self.names[0]}", os.O_RDONLY)
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")


def _files(root: Path) -> list[str]:
    ha_d = root / "ha.d"
    for d in ("ha.d", "state", "run", "init.d"):
        (root / d).mkdir()
    (ha_d / "ha.cf").write_text(HA_CF.format(d=root))
    (ha_d / "haresources").write_text("server1 IPaddr::10.99.253.100/24/veth0\n")
    (ha_d / "authkeys").write_text("auth 1\n1 sha1 bench-secret\n")
    (ha_d / "authkeys").chmod(0o600)
    return ["run", "--config-dir", str(ha_d), "--state-dir", str(root / "state"), "--run-dir", str(root / "run"),
            "--init-dir", str(root / "init.d"), "--node-name", "server1"]


def _once(ns: Netns, python: str, mark: str, root: Path, argv: list[str], wrap: list[str]) -> dict[str, tuple[float, float]]:
    out = root / "marks"
    out.unlink(missing_ok=True)
    for leftover in (root / "run").iterdir():
        leftover.unlink()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    launched = time.monotonic()
    subprocess.run([*wrap, python, "-c", HOOK, mark, str(out), "694", *argv], preexec_fn=ns.enter, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=120)
    marks = {}
    for line in out.read_text().splitlines() if out.exists() else []:
        name, at, cpu = line.split()
        marks[name] = ((float(at) - launched) * 1000, float(cpu) * 1000)
    return marks


def _instructions(ns: Netns, python: str, mark: str, root: Path, argv: list[str]) -> int | None:
    stats = root / "callgrind.out"
    _once(ns, python, mark, root, argv, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={stats}"])
    summary = [line for line in stats.read_text().splitlines() if line.startswith("summary:")] if stats.exists() else []
    return int(summary[0].split()[1]) if summary else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bootcost", description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--python", default=sys.executable, help="the interpreter whose hbvip to measure")
    p.add_argument("--valgrind", action="store_true", help="also count instructions (callgrind, one run per moment)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("python -m bench.bootcost: needs root (network namespaces)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="hbvip-bootcost-"))
    try:
        with Netns() as ns:
            hb_argv = _files(root)
            runs = [_once(ns, args.python, "ready", root, hb_argv, []) for _unused in range(args.trials)]
            load = os.getloadavg()[0]
            for mark in ("heartbeat", "ready"):
                got = [r[mark] for r in runs if mark in r]
                if not got:
                    print(f"{mark:<9} never reached (run `{args.python} -m hbvip.cli run ...` by hand to see why)")
                    continue
                wall, cpu = [w for w, _c in got], [c for _w, c in got]
                line = (f"{mark:<9} wall {statistics.median(wall):6.1f} ms ({min(wall):.1f}-{max(wall):.1f})   "
                        f"cpu {statistics.median(cpu):6.1f} ms ({min(cpu):.1f}-{max(cpu):.1f})   n={len(got)}")
                if args.valgrind:
                    count = _instructions(ns, args.python, mark, root, hb_argv)
                    line += f"   instructions {count / 1e6:.1f} M" if count else "   instructions ?"
                print(line)
            print(f"load average {load:.2f} (wall and cpu move with it; instructions do not)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
