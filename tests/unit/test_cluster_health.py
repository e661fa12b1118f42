"""Service health in the failover machine, on the fake clock (issue 18): a node whose check fails gives its
group to an eligible peer with the reason, never takes what it may not hold, and when no node is eligible
the group stays and both say degraded; eligible again, auto_failback brings the group home."""

from __future__ import annotations

from cluster_sim import DEADTIME, Sim
from hbvip.cluster import Eligibility, Failover, Hold, PeerMessage, Send
from hbvip.cluster.eligibility import ELIGIBLE_FIELD


def started(auto_failback: str = "on") -> Sim:
    sim = Sim(auto_failback=auto_failback, health=True)
    sim.run_until(20)
    assert sim.vip_holders() == ["server1"]
    return sim


def holders_between(sim: Sim, start: float, end: float, step: float = 0.05) -> list[tuple[str, ...]]:
    """The distinct holder sets seen from start to end, in order."""
    seen: list[tuple[str, ...]] = []
    sim.run_until(start)
    while sim.t < end:
        now = tuple(sim.vip_holders())
        if not seen or seen[-1] != now:
            seen.append(now)
        sim.run_until(sim.t + step)
    return seen


def test_holder_whose_check_fails_hands_over_with_the_reason_in_heartbeat_order():
    sim = started()
    sim.eligible("server1", 20.0, False)
    t = sim.first_time_holder("server2", 20.0)
    assert t is not None and t - 20.0 < 1.0          # no deadtime: the standby protocol runs at once
    assert ("server1", "check failed: web") in sim.releases
    stop = next(c for c in sim.calls if c[1:] == ("server1", "stop"))
    start = [c for c in sim.calls if c[1:] == ("server2", "start")][-1]
    assert stop[0] < start[0]                        # released before the peer starts it
    assert any("check failed: web: giving" in line for line in sim.classic("server1"))
    sim.run_until(40)
    assert sim.vip_holders() == ["server2"]
    assert sim.nodes["server1"].failover.degraded == Hold.NONE


def test_no_node_eligible_nothing_moves_both_degraded_never_ping_pong():
    sim = started()
    sim.eligible("server2", 20.0, False)
    sim.eligible("server1", 22.0, False)
    assert holders_between(sim, 20.0, 60.0) == [("server1",)]
    assert [n for n, _r in sim.releases] == []
    for name in ("server1", "server2"):
        assert sim.nodes[name].failover.degraded != Hold.NONE, name
    # the peer recovers: now (and only now) the group moves, once
    sim.eligible("server2", 60.0, True)
    assert holders_between(sim, 60.0, 90.0) == [("server1",), (), ("server2",)]   # released, then taken


def test_the_peer_refuses_an_offer_when_it_is_ineligible_itself():
    sim = started()
    sim.eligible("server2", 20.0, False)
    sim.run_until(21)
    # server1 learned that server2 may not take it, so it does not even ask
    assert not any(mtype == "ask_resources" for t, mtype, _f in sim.nodes["server1"].sent if t > 20)
    fo = sim.nodes["server2"].failover
    out = fo.handle(PeerMessage("ask_resources", {"rsc_hold": "local", "info": "me"}), 21.0)
    assert any(getattr(a, "classic", "") and "ignored: check failed: web" in a.classic for a in out)
    assert not any(isinstance(a, Send) for a in out)


def test_recovery_with_auto_failback_brings_the_group_home_after_rise():
    sim = started("on")
    sim.eligible("server1", 20.0, False)
    sim.run_until(30)
    assert sim.vip_holders() == ["server2"]
    sim.eligible("server1", 40.0, True)     # `rise` passed: the daemon sends this then, not earlier
    assert holders_between(sim, 30.0, 39.9) == [("server2",)]
    t = sim.first_time_holder("server1", 40.0)
    assert t is not None and t - 40.0 < 1.0


def test_recovery_without_auto_failback_leaves_the_group_where_it_is():
    sim = started("off")
    sim.eligible("server1", 20.0, False)
    sim.eligible("server1", 40.0, True)
    assert holders_between(sim, 30.0, 70.0) == [("server2",)]


def test_an_ineligible_node_does_not_take_over_from_a_dead_peer_and_takes_when_it_recovers():
    sim = started()
    sim.eligible("server2", 20.0, False)
    sim.power_loss("server1", 25.0)
    sim.run_until(25 + DEADTIME + 5)
    assert sim.vip_holders() == []
    assert any("Not taking over" in line and "check failed: web" in line for line in sim.classic("server2"))
    sim.eligible("server2", 40.0, True)
    t = sim.first_time_holder("server2", 40.0)
    assert t is not None and t - 40.0 < 1.0


def test_an_ineligible_holder_whose_peer_dies_keeps_the_group_degraded():
    sim = started()
    sim.eligible("server2", 20.0, False)
    sim.eligible("server1", 21.0, False)
    sim.power_loss("server2", 22.0)
    assert holders_between(sim, 22.0, 22 + DEADTIME + 10) == [("server1",)]
    assert sim.nodes["server1"].failover.degraded == Hold.LOCAL


def test_a_heartbeat_peer_says_nothing_of_eligibility_and_counts_as_eligible():
    fo = Failover(me="server1", peer="server2", auto_failback="on", settle_timeout=5, handshake_timeout=10, now=0,
                  health=True)
    fo.handle(PeerMessage("resource", {"rsc_hold": "none", "isstable": "1"}), 1.0)
    assert fo.peer_eligible == Hold.ALL
    fo.handle(PeerMessage("resource", {"rsc_hold": "none", "isstable": "1", ELIGIBLE_FIELD: "foreign"}), 2.0)
    assert fo.peer_eligible == Hold.LOCAL          # its foreign groups are our local ones


def test_eligibility_travels_in_our_reports_only_when_health_is_configured():
    for health, expected in ((True, [(ELIGIBLE_FIELD, "foreign")]), (False, [])):
        fo = Failover(me="server1", peer="server2", auto_failback="on", settle_timeout=5, handshake_timeout=10,
                      now=0, health=health)
        fo.handle(Eligibility(Hold.FOREIGN, "check failed: web"), 0.5)
        body = fo._report().body
        assert [f for f in body if f[0] == ELIGIBLE_FIELD] == expected


def test_ineligible_at_start_up_takes_nothing_and_the_peer_takes_its_foreign_group():
    sim = Sim(health=True)
    sim.eligible("server1", 0.0, False)
    sim.run_until(30)
    assert sim.vip_holders() == ["server2"]
