"""Heartbeat's `ping` tiebreaker in the failover machine, under the fake clock: a node that reaches no ping
node neither takes nor keeps the VIP, and one that reaches one again behaves normally."""

from __future__ import annotations

from cluster_sim import DEADTIME, INITDEAD, KEEPALIVE, Sim
from hbvip.cluster import Command, Connectivity, Failover, Hold, PeerDead, Release, ResourcesDone

SETTLE = DEADTIME + 2 * KEEPALIVE


def started(auto_failback: str = "on", ping: bool = True) -> Sim:
    sim = Sim(auto_failback=auto_failback, ping=ping)
    sim.run_until(20)
    assert sim.vip_holders() == ["server1"]
    return sim


def holders_between(sim: Sim, start: float, end: float, step: float = 0.05) -> set[tuple[str, ...]]:
    seen = set()
    sim.run_until(start)
    while sim.t < end:
        seen.add(tuple(sim.vip_holders()))
        sim.run_until(sim.t + step)
    return seen


def test_without_ping_lines_the_machine_never_waits_for_reachability():
    fo = Failover(me="server1", peer="server2", auto_failback="on", settle_timeout=5, handshake_timeout=10, now=0)
    assert fo.reachable and fo.reach == Hold.ALL and fo.holding_nothing_because is None
    plain, pinged = started(ping=False), started(ping=True)
    assert [c[1:] for c in plain.calls] == [c[1:] for c in pinged.calls]   # the same scripts, nothing more


def test_holder_losing_ping_releases_and_the_peer_takes_over():
    sim = started()
    sim.ping_reach("server1", 20.0, False)
    t = sim.first_time_holder("server2", 20.0)
    assert t is not None and t - 20.0 < 1.0      # no deadtime wait: the peer is told at once
    sim.run_until(40)
    assert sim.vip_holders() == ["server2"]
    assert [c[1:] for c in sim.calls][-3:] == [("server1", "stop"), ("server2", "status"), ("server2", "start")]
    s1 = sim.nodes["server1"].failover
    assert s1.held == Hold.NONE
    assert s1.holding_nothing_because == "no ping node reachable (10.99.0.254)"
    assert any(log.event == "ping.lost" and "no ping node reachable (10.99.0.254)" in log.classic
               for log in sim.nodes["server1"].logs)


def test_release_for_lost_ping_says_so():
    fo = Failover(me="server1", peer="server2", auto_failback="on", settle_timeout=5, handshake_timeout=10, now=0,
                  ping=True)
    fo.handle(Connectivity(True), 0.0)
    fo.handle(PeerDead(), 1.0)
    actions = fo.handle(ResourcesDone("acquire", Hold.ALL, True), 2.0)
    assert fo.held == Hold.ALL, actions
    actions = fo.handle(Connectivity(False, ("10.99.0.254",)), 3.0)
    assert Release(Hold.ALL, "ping lost") in actions


def test_partition_where_the_backup_also_lost_ping_leaves_exactly_one_holder():
    sim = started()
    sim.ping_reach("server2", 20.0, False)
    sim.partition(20.5)
    assert holders_between(sim, 20.5, 20.5 + 3 * SETTLE) == {("server1",)}
    assert "node server1: is dead" in sim.classic("server2")
    refused = [log for log in sim.nodes["server2"].logs if log.event == "takeover.refused"]
    assert refused and "no ping node reachable" in refused[0].classic


def test_partition_where_the_holder_lost_ping_moves_the_vip_to_the_backup():
    sim = started()
    sim.partition(20.0)
    sim.ping_reach("server1", 20.5, False)
    sim.run_until(20.5 + SETTLE)
    assert sim.vip_holders() == ["server2"]
    assert holders_between(sim, sim.t, sim.t + 20) == {("server2",)}


def test_both_lose_ping_nobody_holds():
    sim = started()
    sim.ping_reach("server1", 20.0, False)
    sim.ping_reach("server2", 20.0, False)
    sim.run_until(20 + SETTLE)
    assert holders_between(sim, sim.t, sim.t + 20) == {()}
    assert [c[1:] for c in sim.calls][-1] == ("server1", "stop")


def test_ping_back_with_auto_failback_returns_the_vip_to_its_home_node():
    sim = started()
    sim.ping_reach("server1", 20.0, False)
    sim.run_until(30)
    assert sim.vip_holders() == ["server2"]
    sim.ping_reach("server1", 30.0, True)
    sim.run_until(30 + SETTLE)
    assert sim.vip_holders() == ["server1"]
    assert [c[1:] for c in sim.calls][-3:] == [("server2", "stop"), ("server1", "status"), ("server1", "start")]


def test_ping_back_with_auto_failback_off_leaves_the_vip_where_it_is():
    sim = started(auto_failback="off")
    sim.ping_reach("server1", 20.0, False)
    sim.run_until(30)
    sim.ping_reach("server1", 30.0, True)
    assert holders_between(sim, 30.0, 30.0 + 2 * SETTLE) == {("server2",)}


def test_both_back_after_both_lost_ping_serve_the_vip_once_again():
    sim = started()
    sim.ping_reach("server1", 20.0, False)
    sim.ping_reach("server2", 20.0, False)
    sim.run_until(30)
    sim.ping_reach("server2", 30.0, True)      # the backup first: it takes the unclaimed group
    sim.run_until(30 + SETTLE)
    assert sim.vip_holders() == ["server2"]
    sim.ping_reach("server1", 40.0, True)      # then the home node: auto_failback
    sim.run_until(40 + SETTLE)
    assert sim.vip_holders() == ["server1"]


def test_node_without_ping_does_not_take_over_a_dead_peer_until_ping_returns():
    sim = started()
    sim.ping_reach("server2", 20.0, False)
    sim.power_loss("server1", 21.0)
    assert holders_between(sim, 21.0, 21.0 + 2 * SETTLE) == {()}
    sim.ping_reach("server2", 40.0, True)
    t = sim.first_time_holder("server2", 40.0)
    # It first listens a heal grace (2 x keepalive) for the peer, whose link may have come back too.
    assert t is not None and 2 * KEEPALIVE <= t - 40.0 < 2 * KEEPALIVE + 0.5


def test_ping_node_and_peer_back_in_the_same_instant_leave_the_vip_where_it_is():
    """One cable: server2 lost the ping node and the heartbeat link together, declared server1 dead and
    held back; both come back at once. It must hear server1 before it would take over, not after."""
    sim = started()
    sim.ping_reach("server2", 20.0, False)
    sim.partition(20.0)
    sim.run_until(20.0 + 2 * SETTLE)
    assert "node server1: is dead" in sim.classic("server2")
    starts = len([c for c in sim.calls if c[1:] == ("server2", "start")])
    sim.partition(40.0, heal=True)
    sim.ping_reach("server2", 40.0, True)
    assert holders_between(sim, 40.0, 40.0 + 3 * SETTLE) == {("server1",)}
    assert len([c for c in sim.calls if c[1:] == ("server2", "start")]) == starts
    assert "Resources being acquired from server1." not in sim.classic("server2")


def test_lone_node_without_ping_does_not_take_at_initdead():
    sim = Sim(start2=1000, ping=True)
    sim.power_loss("server2", 0.0)
    sim.ping_reach("server1", 0.01, False)    # after the first probe round answered
    sim.run_until(INITDEAD + 5)
    assert sim.vip_holders() == []
    sim.ping_reach("server1", INITDEAD + 5, True)
    sim.run_until(INITDEAD + 5 + 2 * KEEPALIVE + 1)     # after the heal grace: its peer stayed silent
    assert sim.vip_holders() == ["server1"]


def test_operator_takeover_is_refused_without_ping():
    sim = started()
    sim.ping_reach("server2", 20.0, False)
    sim.command("server2", 21.0, Command("takeover", "all", request_id=7))
    sim.run_until(25)
    reply = sim.nodes["server2"].replies[-1]
    assert not reply.ok and "no ping node reachable" in reply.message
    assert sim.vip_holders() == ["server1"]


def test_holder_does_not_fail_back_to_a_home_node_that_reaches_no_ping_node():
    sim = started()
    sim.power_loss("server1", 20.0)
    sim.run_until(30)
    assert sim.vip_holders() == ["server2"]
    sim.nodes["server1"].reaches_ping = False        # it reboots while its router is down
    sim.at(30.0, "boot", "server1")
    assert holders_between(sim, 30.0, 50.0) == {("server2",)}
    asks = [f for t, mtype, f in sim.nodes["server2"].sent if t > 30 and mtype == "ask_resources"]
    assert asks == []                                  # no standby offered that server1 would have to refuse
    sim.ping_reach("server1", 50.0, True)
    t = sim.first_time_holder("server1", 50.0)
    assert t is not None and t - 50.0 < 1.0            # auto_failback as soon as it reports being reachable
