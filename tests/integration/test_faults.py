"""The fault suite, fast subset (runs in `make test`): each fault on a real lab pair with FAST timers
(keepalive 200 ms, deadtime 1 s), ending in exactly one VIP holder within deadtime + 2 x keepalive, the
client served by it, failback.sh called in Heartbeat's order, /etc/ha.d untouched, no key in any output,
and the log naming what happened. Each test prints a `MATRIX` row; docs/reliability.md collects them.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from faults import (
    HOSTS, busy_loops, config_snapshot, deafen, heal, lossy, running_pair,
)
from pair import FAST, calls, wait_until


def matrix(fault: str, holders_during: int, settle_s: float | None, note: str = "") -> None:
    settle = "-" if settle_s is None else f"{settle_s:.2f}"
    row = f"MATRIX | {fault} | {holders_during} | {settle} | {note}"
    print(row)
    path = os.environ.get("HBVIP_FAULT_MATRIX")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(row + "\n")


def test_sigkill_of_holder_then_restart_by_supervisor_ends_with_one_holder(lab):
    with running_pair(lab) as p:
        a1 = p.agents["server1"]
        t0 = time.monotonic()
        p.crash("server1")
        # Without a supervisor the VIP stays on server1 (nothing runs to remove it) while server2 takes it.
        wait_until(lambda: "server2" in p.holders(), p.deadline + 1, "server2 to take over")
        t_takeover = time.monotonic() - t0
        assert "node server1: is dead" in p.agents["server2"].ha_log()
        a1.start()                                  # what systemd's Restart= does
        t_restart = time.monotonic()
        settle = p.settle("server1", t_restart, timeout=p.deadline + 2 * FAST.deadtime_s)
        p.client_reaches("server1")
        assert "vip.stale_removed" in a1.ha_log() or "stale" in a1.ha_log()
        matrix("SIGKILL holder (no restart)", p.watch.max_holders(t0, t_restart), t_takeover,
               "server2 serves (its GARP); server1 keeps a stale address until restarted")
        matrix("SIGKILL holder + restart", 1, settle, "restart removes the stale VIP, then auto_failback")


def test_sigterm_of_holder_hands_over_at_once(lab):
    with running_pair(lab) as p:
        t0 = time.monotonic()
        p.agents["server1"].kill(signal.SIGTERM)
        assert p.agents["server1"].wait() == 0
        settle = p.settle("server2", t0, timeout=p.deadline)
        assert settle < p.deadline
        p.client_reaches("server2")
        assert "Received shutdown notice from 'server1'." in p.agents["server2"].ha_log()
        assert [(h, a) for _, h, a in calls(lab)][-3:] == [("server1", "stop"), ("server2", "status"),
                                                           ("server2", "start")]
        matrix("SIGTERM holder", p.watch.max_holders(t0), settle)


def test_power_loss_of_holder_moves_the_vip_within_deadline(lab):
    with running_pair(lab) as p:
        t0 = time.monotonic()
        p.crash("server1", power=True)
        settle = p.settle("server2", t0, timeout=p.deadline)
        assert settle <= p.deadline, f"took {settle:.2f} s"
        p.client_reaches("server2")
        assert "node server1: is dead" in p.agents["server2"].ha_log()
        matrix("power loss of holder", p.watch.max_holders(t0), settle)
        p.host("server1").power_on()


def test_power_loss_of_backup_changes_nothing(lab):
    with running_pair(lab) as p:
        before = len(calls(lab))
        t0 = time.monotonic()
        p.crash("server2", power=True)
        time.sleep(p.deadline + 0.5)
        assert p.holders() == {"server1"} and len(calls(lab)) == before
        assert "node server2: is dead" in p.agents["server1"].ha_log()
        matrix("power loss of backup", p.watch.max_holders(t0), 0.0, "no script runs, VIP does not blink")
        p.host("server2").power_on()


def test_both_nodes_starting_together_settle_on_the_home_node(lab):
    with running_pair(lab, start=False) as p:
        t0 = time.monotonic()
        threads = [threading.Thread(target=a.start) for a in p.agents.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        settle = p.settle("server1", t0, timeout=FAST.deadtime_s * 2 + 3)
        p.client_reaches("server1")
        assert "server2" not in {h for _, h, a in calls(lab) if a == "start"}
        matrix("joint start", p.watch.max_holders(t0), settle, "from process start")


def test_symmetric_partition_heals_to_the_home_node_with_a_garp_burst(lab):
    with running_pair(lab, overlap_allowed=True) as p:
        s1, s2 = p.host("server1"), p.host("server2")
        t0 = time.monotonic()
        deafen(s1, s2)
        deafen(s2, s1)
        wait_until(lambda: p.holders() == {"server1", "server2"}, p.deadline + 1, "split brain (both hold)")
        assert "node server1: is dead" in p.agents["server2"].ha_log()
        time.sleep(1.2)                           # server2's takeover burst (5 x 200 ms) is over
        arp = lab.arpwatch()
        try:
            t_heal = time.monotonic()
            heal(s1, s2)
            settle = p.settle("server1", t_heal, timeout=p.deadline)
            assert settle <= p.deadline, f"heal took {settle:.2f} s"
            garps = wait_until(lambda: arp.gratuitous_from(lab.vip, after=t_heal), 2, "GARP after heal")
            assert {f.sender_mac for f in garps} == {s1.mac}
        finally:
            arp.stop()
        p.client_reaches("server1")
        log1, log2 = p.agents["server1"].ha_log(), p.agents["server2"].ha_log()
        assert "returning after partition" in log1 + log2
        assert "Both machines own" in log1 + log2
        matrix("symmetric partition (during)", p.watch.max_holders(t0, t_heal), None, "both hold: no quorum")
        matrix("symmetric partition + heal", p.watch.max_holders(t_heal + settle), settle,
               "home node keeps + GARP burst; other releases")


ONE_WAY_BUG = ("known bug: after a one-way partition heals, the home node only re-announces (GARP) on the "
               "peer's report and never sends its own, so the peer (peer_held reset by PeerReturned) keeps its "
               "copy: two holders until a restart. Fix in cluster/failover.py _reconcile: also send a report.")


@pytest.mark.parametrize("deaf", ["server1", pytest.param("server2", marks=pytest.mark.xfail(
    reason=ONE_WAY_BUG, strict=True))])
def test_one_way_partition_then_heal(lab, deaf):
    """`deaf` stops hearing its peer's heartbeats; the peer still hears it."""
    with running_pair(lab, overlap_allowed=True) as p:
        other = "server2" if deaf == "server1" else "server1"
        t0 = time.monotonic()
        deafen(p.host(deaf), p.host(other))
        time.sleep(p.deadline + 1.0)
        during = p.watch.max_holders(t0)
        holders_during = sorted(p.holders())
        t_heal = time.monotonic()
        heal(p.host(deaf))
        settle = p.settle("server1", t_heal, timeout=p.deadline)
        p.client_reaches("server1")
        assert f"node {other}: is dead" in p.agents[deaf].ha_log()
        matrix(f"one-way partition, {deaf} deaf", during, None, f"holders during: {'+'.join(holders_during)}")
        matrix(f"one-way partition, {deaf} deaf + heal", 1, settle)


def test_twenty_percent_heartbeat_loss_causes_no_failover(lab):
    with running_pair(lab) as p:
        duration = 10.0
        t0 = time.monotonic()
        lossy(p.host("server1"), 20)
        lossy(p.host("server2"), 20)
        time.sleep(duration)
        heal(p.host("server1"), p.host("server2"))
        assert p.watch.max_holders(t0) == 1 and p.holders() == {"server1"}
        st1, st2 = p.agents["server1"].status(), p.agents["server2"].status()
        assert st2["peer"]["state"] == "active" and st1["peer"]["state"] == "active"
        assert "is dead" not in p.agents["server2"].ha_log()
        late = st1["peer"]["late_heartbeats"] + st2["peer"]["late_heartbeats"]
        matrix("20 % heartbeat loss, 10 s", 1, None, f"no failover; late heartbeats {late}; jitter not emulated")


def test_cpu_starvation_of_the_holder_causes_no_failover(lab):
    with running_pair(lab) as p:
        a1 = p.agents["server1"]
        t0 = time.monotonic()
        with busy_loops(p.host("server1"), a1.proc.pid, count=3):
            time.sleep(6)
        assert p.watch.max_holders(t0) == 1 and p.holders() == {"server1"}
        assert "is dead" not in p.agents["server2"].ha_log()
        late = p.agents["server2"].status()["peer"]["late_heartbeats"]
        matrix("CPU starvation (3 busy loops on the agent's core, 6 s)", 1, None, f"no failover; late {late}")


FAILING_START = """#!/bin/sh
echo "$(date +%s.%N) $(uname -n) $1" >> /var/log/failback-calls.log
[ "$1" = start ] && [ "$(uname -n)" = server1 ] && {HOW}
exit 0
"""


START_FAIL_BUG = ("known bug: when the home node's start fails it rolls back and reports rsc_hold=none, but a "
                  "peer already RUNNING only takes unclaimed groups at start-up (STARTING phase), so nobody "
                  "serves the VIP. Fix in cluster/failover.py _on_peer_report: take stable-unclaimed categories.")


@pytest.mark.xfail(reason=START_FAIL_BUG, strict=True)
@pytest.mark.parametrize("how", ["fail", "hang"])
def test_resource_script_failing_or_hanging_on_start(lab, how):
    """server1's failback.sh start fails (exit 1) or hangs past script_timeout: server1 must roll back
    (no VIP left behind) and the log must say which script and why."""
    with running_pair(lab, start=False, extensions="script_timeout 1\n") as p:
        body = "exit 1" if how == "fail" else "sleep 30"
        for h in HOSTS:
            p.host(h).write("/etc/ha.d/resource.d/failback.sh", FAILING_START.replace("{HOW}", body), mode=0o755)
        p.config_before = config_snapshot(lab)
        t0 = time.monotonic()
        p.agents["server1"].start()
        p.agents["server2"].start()
        settle = p.settle("server2", t0, timeout=FAST.deadtime_s + 4)
        p.client_reaches("server2")
        log1 = p.agents["server1"].ha_log()
        assert "resource acquisition failed" in log1 and "failback.sh start" in log1
        matrix(f"failback.sh start {'fails' if how == 'fail' else 'hangs past script_timeout 1 s'}",
               p.watch.max_holders(t0), settle, "server1 rolls back; server2 serves")


def test_sighup_with_broken_config_keeps_serving(lab):
    with running_pair(lab) as p:
        s1 = p.host("server1")
        good = s1.read("/etc/ha.d/ha.cf")
        s1.write("/etc/ha.d/ha.cf", good.replace("deadtime 1", "deadtime banana"))
        p.config_before = config_snapshot(lab)
        t0 = time.monotonic()
        p.agents["server1"].kill(signal.SIGHUP)
        wait_until(lambda: "Configuration reload refused" in p.agents["server1"].ha_log(), 5, "refusal logged")
        time.sleep(p.deadline)
        assert "ha.cf:" in p.agents["server1"].ha_log()
        assert p.agents["server1"].proc.poll() is None
        assert p.watch.max_holders(t0) == 1 and p.holders() == {"server1"}
        assert p.agents["server1"].status()["timers"]["deadtime"] == 1.0
        matrix("SIGHUP with broken ha.cf", 1, 0.0, "refused, running config kept, file:line logged")
