"""`python -m bench --smoke`: the benchmark still runs end to end and reports every contender.

The full bench is too long for `make test`; this one trial at one timer set catches a contender that
no longer starts, a probe that no longer measures, or a report that lost its numbers. Its size is
checked by its shape (one failover trial per contender), not by a wall-clock budget: it shares two
cores with the rest of `make test`, and took 101-111 s there depending on what ran beside it.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTENDERS = ("hbvip", "heartbeat", "keepalived")


@pytest.mark.timeout(240)
def test_smoke_bench_measures_every_contender_within_its_budget(lab_support: None, tmp_path: Path) -> None:
    started = time.monotonic()
    cmd = [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path), "--prefix", "bnt"]
    res = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=220)
    took = time.monotonic() - started
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    print(f"smoke bench took {took:.0f} s")

    results = json.loads((tmp_path / "results.json").read_text())
    md = (tmp_path / "results.md").read_text()
    assert (tmp_path / "failover.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for c in CONTENDERS:
        [trial] = [r for r in results["failover"] if r["contender"] == c]
        assert trial["error"] is None, trial
        for metric in ("first_service", "takeover_power", "outage_power", "failback_gap", "planned_loss",
                       "takeover_kill9", "blackhole_kill9"):
            assert isinstance(trial[metric], float), (c, metric, trial[metric])
        # a power loss of the primary is never answered by the backup before the fault
        assert 0 < trial["takeover_power"] < 30
        [fp] = [f for f in results["footprint"] if f["contender"] == c]
        assert fp["error"] is None and fp["server1"]["rss_mb"] > 1 and fp["server1"]["procs"] >= 1, (c, fp)
        assert fp["server1"]["wakeups_per_s"] > 0 and fp["server1"]["us_per_wakeup"] > 0
        [start] = [r for r in results["startup"] if r["contender"] == c]
        assert start["error"] is None and 0 < start["listening"] < 10, start
        assert f"| {c} |" in md
    assert "## Targets (hbvip)" in md and "## Start-up" in md

    # the service-death scenario: the same check for hbvip and keepalived, none for Heartbeat
    check = results["meta"]["service_check"]
    assert {r["contender"] for r in results["service"]} == {"hbvip", "keepalived"}
    for trial in results["service"]:
        assert trial["error"] is None, trial
        # `fall` failed runs one interval apart: never sooner than (fall - 1) intervals after the death,
        # and no later than a late first run, the fall, the check's timeout and a deadtime's margin
        low, high = (check["fall"] - 1) * check["interval_s"], (check["fall"] + 1) * check["interval_s"] + 2
        assert low <= trial["takeover_service"] <= high, trial
        assert trial["holders"].endswith("server2"), trial
    assert "## Service death" in md and "service-death takeover" in md
