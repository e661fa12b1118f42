"""The floor (issue 20, `make soak` only): keepalive 10 ms / deadtime 40 ms holds for 60 s while both
cores are busy. No takeover, no change of holder, no resource script; the heartbeats that arrived
later than warntime are counted and printed (a matrix row), since a late one is what a false failover
would grow from.

One minute of 100 heartbeats a second on a machine whose two cores each run busy loops is long, so it
is kept out of `make test` (marker `soak`). On its own:

    .venv/bin/pytest tests/integration/test_soak_floor.py -m soak -s

Each agent is pinned to one core with `HOGS_PER_CORE` busy loops beside it (`faults.busy_loops`), so
neither core is ever idle and every wake-up of an agent competes with the loops for its core.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from faults import busy_loops, matrix, running_pair
from pair import HOSTS, Timers, calls

pytestmark = [pytest.mark.soak, pytest.mark.lab, pytest.mark.timeout(600)]

FLOOR = Timers("10ms", "30ms", "40ms", "2")   # keepalive, warntime, deadtime, initdead
SOAK_S = 60
HOGS_PER_CORE = 1


def _late(p) -> dict[str, int]:
    return {h: p.agents[h].status()["peer"]["late_heartbeats"] for h in HOSTS}


def _received(p) -> dict[str, int]:
    return {h: p.agents[h].status()["counters"]["packets_received"] for h in HOSTS}


def test_floor_timers_hold_for_a_minute_with_both_cores_busy(lab):
    with running_pair(lab, FLOOR) as p:
        late0, received0, calls0 = _late(p), _received(p), len(calls(lab))
        logged0 = {h: len(p.agents[h].ha_log()) for h in HOSTS}
        t0 = time.monotonic()
        with ExitStack() as hogs:
            for cpu, host in enumerate(HOSTS):
                hogs.enter_context(busy_loops(p.host(host), p.agents[host].proc.pid, count=HOGS_PER_CORE, cpu=cpu))
            while time.monotonic() - t0 < SOAK_S:
                held = p.holders()
                assert held == {"server1"}, f"the VIP moved after {time.monotonic() - t0:.1f} s: held by {held}"
                time.sleep(0.2)
        elapsed = time.monotonic() - t0
        late = {h: n - late0[h] for h, n in _late(p).items()}
        received = {h: n - received0[h] for h, n in _received(p).items()}
        assert p.watch.max_holders(t0) == 1 and p.holders() == {"server1"}
        assert all({"server1"} == set(held) for t, held in p.watch.samples if t >= t0), "the holder changed"
        for h in HOSTS:
            logged = p.agents[h].ha_log()[logged0[h]:]
            assert "is dead" not in logged, f"{h} declared its peer dead:\n{logged[-2000:]}"
        assert all(a.proc and a.proc.poll() is None for a in p.agents.values())
        assert len(calls(lab)) == calls0, "a resource script ran during the soak"
        # The link carried the minute: at least half the heartbeats a 10 ms keepalive sends arrived.
        assert min(received.values()) >= elapsed / FLOOR.keepalive_s / 2, f"heartbeats received: {received}"
        matrix(f"floor 10 ms / 40 ms, {SOAK_S} s, {HOGS_PER_CORE} busy loops on each core", 1, None,
               f"no failover; heartbeats received {received}, late (> warntime) {late}")
