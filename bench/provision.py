"""How long site.yml takes on one pair: a fresh pair, then converged reruns.

`python -m bench.provision [--reruns N]` builds a two-host lab with sshd (the demo's pair: engine agent,
its timers and inventory), runs site.yml from the lab's client namespace as an operator would, and
prints the wall time of each run with its PLAY RECAP. The first run starts from fresh hosts and an
empty wheel cache, so it includes building the agent's wheel on the controller; the reruns find the
pair converged. Issue "The collection composes" asks ≤ 45 s for the first and ≤ 20 s for a rerun on a
quiet machine (check `uptime` first: the figures are wall times).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo import provision
from lab import Lab

_ENV = {"ANSIBLE_CONFIG": str(provision.REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}


def _site(lab: Lab, inventory: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    result = lab.run_controller(["ansible-playbook", "-i", str(inventory), str(provision.SITE), *args],
                                env=_ENV, check=False, timeout=900)
    return time.monotonic() - started, result


def _recap(result: subprocess.CompletedProcess) -> str:
    counts = re.findall(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)", result.stdout, re.M)
    return ", ".join(f"{host} ok={ok} changed={changed}" for host, ok, changed in counts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.provision", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reruns", type=int, default=3, help="converged reruns after the first run (default 3)")
    p.add_argument("--prefix", default="bp", help="lab namespace prefix (the pid is appended)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("python -m bench.provision: the lab needs root", file=sys.stderr)
        return 2
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="hbvip-wheels-") as cache, \
            Lab(prefix=f"{args.prefix}{os.getpid()}", net=None, hosts=provision.HOSTS, ssh=True) as lab:
        inventory = provision.inventory(lab, "agent")
        cold = ("-e", f"heartbeat_vip_agent_wheel_cache={cache}/wheels")
        seconds, result = _site(lab, inventory, *cold)
        print(f"fresh pair (wheel built): {seconds:.1f} s  {_recap(result)}", flush=True)
        if result.returncode != 0:
            print(result.stdout[-4000:], result.stderr[-2000:], file=sys.stderr)
            return 1
        reruns = []
        for n in range(1, args.reruns + 1):
            seconds, result = _site(lab, inventory, *cold)
            reruns.append(seconds)
            print(f"converged rerun {n}: {seconds:.1f} s  {_recap(result)}", flush=True)
            if result.returncode != 0:
                print(result.stdout[-4000:], result.stderr[-2000:], file=sys.stderr)
                return 1
        if reruns:
            print(f"converged rerun median: {statistics.median(reruns):.1f} s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
