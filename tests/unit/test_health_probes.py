"""The pure health machine (cluster/health.py) on a fake clock: fall/rise streaks of checks, a hanging
check counting as a failure, monitors run only on the holder, restarted `restarts` times and then banned
until `failure_timeout` or `hbvip cleanup`, tracked links."""

from __future__ import annotations

import math

from hbvip.cluster import Hold
from hbvip.cluster.health import Banned, Health, ProbeKind, Restart
from hbvip.config import parse_extensions, parse_haresources

CHECK, MONITOR = ProbeKind.CHECK, ProbeKind.MONITOR
GROUPS, PROBLEMS = parse_haresources("server1 IPaddr::10.99.0.100/24/eth0 failback.sh\n"
                                     "server2 IPaddr::10.99.0.101/24/eth1 other.sh\n", "haresources")
VIP1, VIP2 = (g.key for g in GROUPS)


def health(text: str, me: str = "server1") -> Health:
    ext, problems = parse_extensions(text, "hbvip.cf")
    assert problems == []
    return Health.from_config(me=me, groups=GROUPS, checks=ext.checks, monitors=ext.monitors,
                              tracks=ext.track_interfaces,
                              vip_interfaces={VIP1: frozenset({"eth0"}), VIP2: frozenset({"eth1"})}, now=0.0)


def run(h: Health, kind: ProbeKind, name: str, results: list[bool], start: float = 0.0) -> list:
    out = []
    t = start
    for ok in results:
        assert [p.name for p in h.due(t, [VIP1]) if p.kind is kind] == [name], t
        out += h.result(kind, name, ok, t + 0.01)
        t = h.probes[(kind, name)].next_run
    return out


def test_a_check_goes_ineligible_after_fall_and_eligible_after_rise():
    h = health("check web command true interval 2 fall 3 rise 2\n")
    run(h, CHECK, "web", [False, False])
    assert h.eligible() == (Hold.ALL, "")             # two failures of three: still eligible
    run(h, CHECK, "web", [False], start=10)
    assert h.eligible() == (Hold.NONE, "check failed: web")
    probe = h.probes[(CHECK, "web")]
    assert (probe.last, probe.streak) == (False, 3)
    run(h, CHECK, "web", [True], start=20)
    assert h.eligible()[0] == Hold.NONE               # one success of two
    run(h, CHECK, "web", [True], start=30)
    assert h.eligible() == (Hold.ALL, "")


def test_a_check_runs_every_interval_and_never_twice_at_once():
    h = health("check web command true interval 2\n")
    assert [p.name for p in h.due(0.0, [])] == ["web"]
    assert h.due(5.0, []) == []                      # still running (a hanging check): not started again
    h.result(CHECK, "web", False, 5.0, "timed out after 1 s")   # the edge killed it at its timeout
    assert h.probes[(CHECK, "web")].detail == "timed out after 1 s" and h.eligible()[0] == Hold.NONE
    assert h.next_deadline([]) == 7.0 and h.due(6.9, []) == [] and len(h.due(7.0, [])) == 1


def test_a_check_with_a_group_blocks_only_that_groups_category():
    h = health(f"check web command true group {VIP2}\n")
    run(h, CHECK, "web", [False])
    assert h.eligible() == (Hold.LOCAL, "check failed: web")   # server2's group is foreign here


def test_a_monitor_runs_only_on_the_holder():
    h = health("monitor failback.sh interval 5\n")
    assert h.due(10.0, []) == [] and h.next_deadline([]) == math.inf
    assert [p.name for p in h.due(10.0, [VIP1])] == ["failback.sh"]


def test_a_monitor_is_restarted_restarts_times_then_banned_until_failure_timeout():
    h = health("monitor failback.sh interval 5 fall 2 restarts 1 failure_timeout 60\n")
    assert run(h, MONITOR, "failback.sh", [False], start=5) == []
    assert run(h, MONITOR, "failback.sh", [False], start=11) == [Restart("failback.sh", VIP1, 1)]
    h.restarted("failback.sh", 12.0)
    assert h.eligible()[0] == Hold.ALL
    assert run(h, MONITOR, "failback.sh", [True, False], start=17) == []
    out = run(h, MONITOR, "failback.sh", [False], start=40)
    assert out == [Banned("failback.sh", 40.01 + 60)]
    assert h.eligible() == (Hold.FOREIGN, "monitor failed: failback.sh")
    assert h.due(50.0, [VIP1]) == []                 # banned: not monitored any more
    assert h.tick(100.0) == [] and h.tick(100.01) == ["failback.sh"]
    assert h.eligible() == (Hold.ALL, "") and h.probes[(MONITOR, "failback.sh")].restarts_done == 0


def test_without_failure_timeout_only_cleanup_lifts_the_ban():
    h = health("monitor failback.sh restarts 0\n")
    assert run(h, MONITOR, "failback.sh", [False], start=10) == [Banned("failback.sh", math.inf)]
    assert h.tick(1e9) == [] and h.eligible()[0] == Hold.FOREIGN
    assert not h.cleanup(VIP2) and h.cleanup(VIP1)
    assert h.eligible() == (Hold.ALL, "")


def test_a_tracked_link_down_blocks_the_groups_with_a_vip_on_it():
    h = health("track_interface eth1\n")
    h.link("eth0", False, 1.0)                       # not tracked: no effect
    h.link("eth1", False, 1.0)
    assert h.eligible() == (Hold.LOCAL, "link down: eth1")
    h.link("eth1", True, 2.0)
    assert h.eligible() == (Hold.ALL, "")
