"""Measure power-loss takeover of the agent on the lab: N trials per timer set, from the client's probes.

    python scripts/takeover_trials.py [--trials 5]

Takeover = time from the fault (agent SIGKILL + VIP removed + link down on the holder) to the first
probe answered by the backup; the client probes the VIP every 5 ms. `make bench` is the full comparison
with Heartbeat and keepalived; this is the agent-only quick check quoted in the agent-core notes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "agent" / "src"), str(ROOT / "tests" / "integration")]

from lab import Lab  # noqa: E402
from pair import SEED, Agent, Timers, has_vip, install, wait_until  # noqa: E402

SETS = {"seed 1s/5s": SEED, "100ms/300ms": Timers("100ms", "200ms", "300ms", "300ms")}


def trial(timers: Timers) -> float:
    with Lab(prefix=f"tt{time.monotonic_ns() % 100000}", net=None) as lab:
        install(lab, timers)
        a1 = Agent(lab.hosts["server1"]).start()
        a2 = Agent(lab.hosts["server2"]).start()
        probe = lab.probe(interval=0.005)
        try:
            probe.wait_for("server1", timeout=20)
            wait_until(lambda: a2.status()["peer"]["state"] == "active" and a1.status()["stable"], 10, "pair")
            time.sleep(timers.keepalive_s * 3)
            t_fault = time.monotonic()
            lab.hosts["server1"].power_loss([a1.proc])
            served = probe.wait_for("server2", timeout=timers.deadtime_s + 5, after=t_fault)
            assert has_vip(lab, "server2")
            return served - t_fault
        finally:
            probe.stop()
            a1.stop()
            a2.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    print(f"{'timers':<14} {'deadtime':>8} {'min':>7} {'median':>7} {'max':>7}  (seconds, {args.trials} trials)")
    for name, timers in SETS.items():
        results = [trial(timers) for _unused in range(args.trials)]
        print(f"{name:<14} {timers.deadtime_s:>8.3f} {min(results):>7.3f} {statistics.median(results):>7.3f} "
              f"{max(results):>7.3f}  {' '.join(f'{r:.3f}' for r in results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
