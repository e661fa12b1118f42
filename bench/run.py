"""The whole bench on one lab: failover trials, scale trials, footprint; a progress bar meanwhile.

Trials are interleaved (trial 1 of every cell, then trial 2, ...) so a slow minute of the machine hits
every contender alike instead of one cell.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lab import Lab

from bench import footprint, startup, timers as T
from bench.contenders import ALL, Contender
from bench.service import CHECK
from bench.trial import ALL_PHASES, PROBE_INTERVAL, SERVICE_PHASES, run_trial

SCALE_VIPS = 64


@dataclass
class Plan:
    trials: int = 10
    failover_sets: Sequence[T.TimerSet] = T.FAILOVER_SETS
    footprint_sets: Sequence[T.TimerSet] = T.FOOTPRINT_SETS
    footprint_s: float = 60.0
    # 1 s adverts: at 200 ms keepalived's VRRP process, busy sending 64×5 GARPs, misses its own adverts
    # and both hosts flap between master and backup (seen here), so the scale cell would measure that.
    scale_sets: Sequence[T.TimerSet] = (T.ONE_S,)
    scale_trials: int = 2
    # The service-death scenario (check interval 1 s, fall 2) at one timer set: the check's own
    # interval dominates, so other timer sets would only repeat it.
    service_sets: Sequence[T.TimerSet] = (T.FAST,)
    startup_sets: Sequence[T.TimerSet] = (T.STARTUP,)
    contenders: Sequence[str] = field(default_factory=lambda: [c.name for c in ALL])

    @classmethod
    def from_env(cls, smoke: bool) -> Plan:
        if smoke:
            plan = cls(trials=1, failover_sets=(T.FAST,), footprint_sets=(T.FAST,), footprint_s=3.0,
                       scale_sets=(), scale_trials=0, startup_sets=(T.FAST,))
        else:
            plan = cls()
        plan.trials = int(os.environ.get("BENCH_TRIALS", plan.trials))
        plan.footprint_s = float(os.environ.get("BENCH_FOOTPRINT_S", plan.footprint_s))
        plan.scale_trials = int(os.environ.get("BENCH_SCALE_TRIALS", plan.scale_trials))
        return plan


def scale_vips(lab: Lab) -> list[str]:
    """64 addresses in one group; the probed VIP is the *last*, so its takeover is the slowest one."""
    others = [lab.addr(i) for i in range(101, 101 + SCALE_VIPS - 1)]
    return others + [lab.vip]


def _version(cmd: list[str]) -> str:
    res = subprocess.run(cmd, check=False, capture_output=True, text=True)
    return (res.stdout + res.stderr).strip().splitlines()[0] if res.stdout or res.stderr else "?"


def versions() -> dict[str, str]:
    import hbvip
    dpkg = ["dpkg-query", "-W", "-f=${Version}"]
    return {"hbvip": hbvip.__version__, "heartbeat": _version(dpkg + ["heartbeat"]),
            "keepalived": _version(dpkg + ["keepalived"]), "kernel": platform.release(),
            "python": platform.python_version(), "cpus": str(os.cpu_count())}


def _startup_trial(lab: Lab, c: Contender, t: T.TimerSet) -> dict[str, object]:
    try:
        return {**startup.trial(lab, c, t), "error": None}
    except (TimeoutError, RuntimeError, OSError, AssertionError, subprocess.SubprocessError) as exc:
        return {"listening": None, "first_heartbeat": None, "error": f"{type(exc).__name__}: {exc}"[:300]}


def _footprint(lab: Lab, c: Contender, t: T.TimerSet, seconds: float) -> dict[str, object]:
    try:
        fp = footprint.measure(lab, c, t, seconds)
        fp["error"] = None
    except (TimeoutError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        fp = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    return fp


def _save(results: dict[str, object], checkpoint: Path | None) -> None:
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_text(json.dumps(results, indent=1))


def run(plan: Plan, prefix: str = "bn", checkpoint: Path | None = None,
        resume: dict[str, object] | None = None) -> dict[str, object]:
    """`checkpoint`: rewritten with the raw results after every cell, so an interrupted hour is not lost;
    `resume`: such a checkpoint, whose finished cells are kept and not run again."""
    started = time.time()
    results: dict[str, object] = resume or {
        "meta": {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
                 "trials": plan.trials, "probe_interval_ms": PROBE_INTERVAL * 1000,
                 "footprint_window_s": plan.footprint_s, "scale_vips": SCALE_VIPS,
                 "versions": versions()},
        "failover": [], "scale": [], "footprint": [], "service": [], "startup": [],
    }
    check = {"interval_s": CHECK.interval_s, "fall": CHECK.fall, "rise": CHECK.rise, "timeout_s": CHECK.timeout_s}
    results["meta"].setdefault("service_check", check)  # type: ignore[union-attr]
    results.setdefault("service", [])
    results.setdefault("startup", [])
    with Lab(prefix=f"{prefix}{os.getpid()}", net=None) as lab:
        contenders = {c.name: c(lab) for c in ALL if c.name in plan.contenders}

        def cells(sets: Sequence[T.TimerSet]) -> list[tuple[Contender, T.TimerSet]]:
            return [(c, t) for t in sets for c in contenders.values() if c.supports(t)]

        fail_cells, scale_cells, fp_cells = cells(plan.failover_sets), cells(plan.scale_sets), cells(plan.footprint_sets)
        svc_cells = [(c, t) for c, t in cells(plan.service_sets) if c.checks_services()]
        start_cells = cells(plan.startup_sets)
        total = (plan.trials * (len(fail_cells) + len(svc_cells) + len(start_cells)) + plan.scale_trials * len(scale_cells)
                 + len(fp_cells))
        columns = (TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns) as progress:
            task = progress.add_task("bench", total=total)
            done = {(r["contender"], r["timers"], r["trial"], s) for s in ("failover", "scale", "footprint", "service", "startup")
                    for r in results[s]}  # type: ignore[attr-defined]
            progress.advance(task, len(done))

            def sweep(section: str, cells: Sequence[tuple[Contender, T.TimerSet]], trials: int,
                      measure: Callable[[Contender, T.TimerSet, int], dict[str, object]]) -> None:
                """Trial 1 of every cell, then trial 2, ...; each row saved as soon as it is measured."""
                for k in range(trials):
                    for c, t in cells:
                        if (c.name, t.name, k, section) in done:
                            continue
                        progress.update(task, description=f"{section} {c.name} {t.name} {k + 1}/{trials}")
                        results[section].append({"contender": c.name, "timers": t.name, "trial": k,  # type: ignore[attr-defined]
                                                 **measure(c, t, k)})
                        _save(results, checkpoint)
                        progress.advance(task)

            sweep("failover", fail_cells, plan.trials, lambda c, t, k: run_trial(lab, c, t, [lab.vip], ALL_PHASES))
            sweep("service", svc_cells, plan.trials, lambda c, t, k: run_trial(
                lab, c, t, [lab.vip], SERVICE_PHASES, service_phase=(k + 0.5) / plan.trials))
            sweep("startup", start_cells, plan.trials, lambda c, t, k: _startup_trial(lab, c, t))
            sweep("scale", scale_cells, plan.scale_trials,
                  lambda c, t, k: run_trial(lab, c, t, scale_vips(lab), ("start", "power")))
            sweep("footprint", fp_cells, 1, lambda c, t, k: _footprint(lab, c, t, plan.footprint_s))
    meta = results["meta"]
    meta.update(trials=plan.trials, footprint_window_s=plan.footprint_s)  # type: ignore[union-attr]
    meta["duration_s"] = round(meta.get("duration_s", 0) + time.time() - started, 1)  # type: ignore[union-attr]
    return results
