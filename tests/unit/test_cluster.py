"""The failover state machine under a fake clock: who holds the VIP, when, and in which script order."""

from __future__ import annotations

import enum

import pytest

from cluster_sim import DEADTIME, INITDEAD, KEEPALIVE, Sim
from hbvip.cluster import Command, Failover, Hold, Incoming, Membership, PeerDead, PeerUp


def test_both_start_together_home_node_serves_vip_at_once():
    sim = Sim()
    sim.run_until(1.0)
    assert sim.vip_holders() == ["server1"]
    assert [c[1:] for c in sim.calls] == [("server1", "status"), ("server1", "start")]


def test_peer_never_heard_node_takes_everything_after_initdead():
    sim = Sim(start2=1000)            # server2 stays off
    sim.power_loss("server2", 0.0)
    sim.run_until(INITDEAD - 0.1)
    assert sim.vip_holders() == []
    sim.run_until(INITDEAD + 0.2)
    assert sim.vip_holders() == ["server1"]
    assert "node server2: is dead" in sim.classic("server1")


def test_backup_starting_later_does_not_disturb_the_holder():
    sim = Sim(start2=30)
    sim.run_until(60)
    assert sim.vip_holders() == ["server1"]
    # "nothing happens nowhere": one acquisition at start, nothing when the backup joins
    assert [c[1:] for c in sim.calls] == [("server1", "status"), ("server1", "start")]


def test_primary_power_loss_moves_vip_within_deadtime():
    sim = Sim()
    sim.run_until(20)
    sim.power_loss("server1", 20.0)
    t = sim.first_time_holder("server2", 20.0)
    last_heard = 20.0 - KEEPALIVE  # status went out at 19.x
    assert t is not None and t <= 20.0 + DEADTIME + 0.2
    assert t >= last_heard + DEADTIME
    log = sim.classic("server2")
    assert log.index("node server1: is dead") < log.index("Resources being acquired from server1.")


def test_failback_order_matches_the_seed_release_before_acquire():
    sim = Sim()
    sim.power_loss("server1", 20.0)
    sim.run_until(30)
    sim.at(40, "boot", "server1")
    sim.run_until(60)
    assert sim.vip_holders() == ["server1"]
    assert [c[1:] for c in sim.calls] == [
        ("server1", "status"), ("server1", "start"),           # initial
        ("server2", "status"), ("server2", "start"),           # takeover
        ("server2", "stop"), ("server1", "status"), ("server1", "start"),   # failback
    ]
    stop_t = [c[0] for c in sim.calls if c[1:] == ("server2", "stop")][0]
    start_t = [c[0] for c in sim.calls if c[1] == "server1" and c[2] == "status"][-1]
    assert start_t >= stop_t + sim.work   # the release had completed


def test_auto_failback_off_keeps_vip_on_the_backup():
    sim = Sim(auto_failback="off")
    sim.power_loss("server1", 20.0)
    sim.run_until(30)
    sim.at(40, "boot", "server1")
    sim.run_until(70)
    assert sim.vip_holders() == ["server2"]


def test_graceful_stop_hands_over_at_once():
    sim = Sim()
    sim.run_until(20)
    sim.command("server1", 20.0, Command("shutdown"))
    t = sim.first_time_holder("server2", 20.0)
    assert t is not None and t - 20.0 < 0.5
    assert sim.nodes["server1"].exited
    sent = [m for _unused, m, _unused in sim.nodes["server1"].sent]
    assert sent[-1] == "shutdone"
    stop_t = [c[0] for c in sim.calls if c[1:] == ("server1", "stop")][0]
    start_t = [c[0] for c in sim.calls if c[1:] == ("server2", "start")][0]
    assert start_t >= stop_t + sim.work


def test_standby_and_takeover_move_the_vip_and_answer_the_request():
    sim = Sim()
    sim.run_until(20)
    sim.command("server1", 20.0, Command("standby", "all", request_id=7))
    sim.run_until(21)
    assert sim.vip_holders() == ["server2"]
    assert [r.ok for r in sim.nodes["server1"].replies if r.request_id == 7] == [True]
    # standby sticks even with auto_failback on
    sim.run_until(40)
    assert sim.vip_holders() == ["server2"]
    sim.command("server1", 40.0, Command("takeover", "all", request_id=8))
    sim.run_until(41)
    assert sim.vip_holders() == ["server1"]
    assert [r.ok for r in sim.nodes["server1"].replies if r.request_id == 8] == [True]


def test_standby_with_dead_peer_is_refused():
    sim = Sim()
    sim.power_loss("server2", 5.0)
    sim.run_until(12)
    sim.command("server1", 12.0, Command("standby", "all", request_id=3))
    sim.run_until(13)
    assert sim.vip_holders() == ["server1"]
    reply = [r for r in sim.nodes["server1"].replies if r.request_id == 3][0]
    assert not reply.ok and "dead" in reply.message


def test_partition_heal_leaves_exactly_one_holder_the_home_node():
    sim = Sim()
    sim.run_until(10)
    sim.link[("server1", "server2")] = sim.link[("server2", "server1")] = False
    sim.run_until(20)
    assert sorted(sim.vip_holders()) == ["server1", "server2"]     # split brain while cut
    sim.link[("server1", "server2")] = sim.link[("server2", "server1")] = True
    sim.run_until(20 + 3 * KEEPALIVE)
    assert sim.vip_holders() == ["server1"]
    assert "Both machines own foreign resources!" in sim.classic("server2")


def test_kill9_and_quick_restart_of_holder_regains_vip_without_waiting_deadtime():
    sim = Sim()
    sim.power_loss("server1", 20.0)
    sim.at(20.5, "boot", "server1")
    sim.run_until(25)
    assert sim.vip_holders() == ["server1"]
    assert all(c[1] == "server1" for c in sim.calls)   # server2 never had to take over


def test_transition_table_ignores_events_a_phase_does_not_accept():
    f = Failover(me="a", peer="b", auto_failback="on", settle_timeout=5, handshake_timeout=5, now=0)
    f.handle(Command("shutdown"), 0)
    assert f.phase.value == "stopped"
    out = f.handle(PeerUp(), 1)
    assert out and out[0].event == "fsm.ignored"


class TestMembership:
    def make(self):
        return Membership("server2", "server1", deadtime=5, warntime=3, initdead=10, now=0.0)

    def msg(self, seq, hg=10, t="status", src="server1", **fields):
        return Incoming(t, src, hg, seq, {"st": "active", "dt": "1388", **fields})

    def test_replay_of_older_generation_is_dropped_and_counted(self):
        m = self.make()
        assert m.receive(self.msg(1, hg=10), 1.0)[0] is None
        reason, events, actions = m.receive(self.msg(2, hg=9), 1.1)
        assert reason == "replay" and not events
        assert m.dropped["replay"] == 1
        assert "attempted replay attack" in actions[0].classic

    def test_unknown_node_and_duplicates_are_dropped(self):
        m = self.make()
        m.receive(self.msg(1), 1.0)
        assert m.receive(self.msg(2, src="intruder"), 1.1)[0] == "unknown_node"
        assert m.receive(self.msg(1), 1.2)[0] == "duplicate"

    def test_higher_generation_is_a_restart_and_seq_starts_again(self):
        m = self.make()
        m.receive(self.msg(5), 1.0)
        reason, events, actions = m.receive(self.msg(1, hg=11), 2.0)
        assert reason is None
        assert any(type(e).__name__ == "PeerRestarted" for e in events)
        assert any(a.classic == "Heartbeat restart on node server1" for a in actions if hasattr(a, "classic"))

    def test_dead_after_the_peers_advertised_deadtime_not_ours(self):
        m = self.make()
        m.receive(self.msg(1, dt="7d0"), 1.0)           # peer says 2000 ms
        events, _unused = m.check(2.9)
        assert not events
        events, actions = m.check(3.0)
        assert isinstance(events[0], PeerDead)
        assert actions[0].classic == "node server1: is dead"

    def test_late_heartbeat_warning_after_warntime(self):
        m = self.make()
        m.receive(self.msg(1), 1.0)
        _unused, _unused, actions = m.receive(self.msg(2), 4.01)
        assert any(a.classic == "Late heartbeat: Node server1: interval 3010 ms" for a in actions
                   if hasattr(a, "classic"))
        assert m.peer.late_heartbeats == 1

    def test_gap_is_asked_for_with_ns_rexmit_and_reordering_is_tolerated(self):
        m = self.make()
        m.receive(self.msg(1), 1.0)
        m.receive(self.msg(3), 1.1)
        assert 2 in m.peer.missing
        _unused, actions = m.check(1.5)
        rexmit = [a for a in actions if getattr(a, "type", None) == "NS_rexmit"]
        assert rexmit and dict(rexmit[0].body)["firstseq"] == "2"
        assert m.receive(self.msg(2), 1.6)[0] is None     # late arrival accepted
        assert not m.peer.missing

    def test_partition_heal_same_generation_is_a_return(self):
        m = self.make()
        m.receive(self.msg(1), 1.0)
        m.check(7.0)
        assert m.peer.status == "dead"
        _unused, events, actions = m.receive(self.msg(9), 20.0)
        assert [type(e).__name__ for e in events] == ["PeerReturned"]


@pytest.mark.parametrize("hold,flipped", [(Hold.NONE, Hold.NONE), (Hold.LOCAL, Hold.FOREIGN),
                                          (Hold.FOREIGN, Hold.LOCAL), (Hold.ALL, Hold.ALL)])
def test_hold_words_and_perspective(hold, flipped):
    assert Hold.from_word(hold.word) == hold
    assert hold.flipped() == flipped


def test_hold_table_operators_give_enum_flags_own_results():
    """`&`, `|` and `~` are looked up in a table for speed: each must equal what enum.IntFlag computes."""
    holds = (Hold.NONE, Hold.LOCAL, Hold.FOREIGN, Hold.ALL)
    for a in holds:
        assert ~a is enum.IntFlag.__invert__(a)
        for b in holds:
            assert a & b is enum.IntFlag.__and__(a, b) and a | b is enum.IntFlag.__or__(a, b)


def test_renamed_peer_is_accepted_under_its_new_name_with_a_fresh_identity():
    m = Membership("server2", "server1", deadtime=5, warntime=3, initdead=10, now=0.0)
    m.receive(Incoming("status", "server1", 50, 7, {"st": "active"}), 1.0)
    m.receive(Incoming("shutdone", "server1", 50, 8, {"st": "dead"}), 2.0)
    m.rename_peer("db1", 3.0)
    assert m.peer.status == "dead" and set(m.nodes) == {"server2", "db1"}
    # the old name is now a stranger; the new name with a new (lower!) generation is welcome
    assert m.receive(Incoming("status", "server1", 51, 1, {"st": "active"}), 4.0)[0] == "unknown_node"
    reason, events, _unused = m.receive(Incoming("status", "db1", 40, 1, {"st": "init"}), 4.1)
    assert reason is None
    assert [type(e).__name__ for e in events] == ["PeerUp"]


def test_failback_cut_short_by_the_home_nodes_stop_is_retried_when_it_returns():
    sim = Sim()
    sim.power_loss("server1", 20.0)
    sim.run_until(30)
    sim.at(40, "boot", "server1")
    # server1 is stopped again right while server2 asks to give the group back
    while not (sim.nodes["server2"].failover.handshake and sim.nodes["server2"].failover.handshake.step == "asked"):
        sim.run_until(sim.t + 0.0001)
    sim.command("server1", sim.t, Command("shutdown"))
    sim.run_until(45)
    assert sim.vip_holders() == ["server2"]
    sim.at(50, "boot", "server1")
    sim.run_until(60)
    assert sim.vip_holders() == ["server1"]


def test_failed_start_on_the_home_node_is_taken_by_the_running_peer_once():
    sim = Sim()
    sim.failing_start.add("server1")
    sim.run_until(10)
    assert sim.vip_holders() == ["server2"]
    assert any(log.event == "takeover.unclaimed" for log in sim.nodes["server2"].logs)
    assert any(log.event == "acquire.failed" for log in sim.nodes["server1"].logs)


def test_a_group_that_fails_to_start_everywhere_does_not_ping_pong():
    sim = Sim()
    sim.failing_start.update({"server1", "server2"})
    sim.run_until(30)
    assert sim.vip_holders() == []
    starts = [c for c in sim.calls if c[2] == "start"]
    assert len(starts) == 2        # one attempt on each node, then both report the group unserved


def test_home_node_that_went_standby_then_restarted_gets_its_groups_back():
    sim = Sim()
    sim.run_until(5)
    sim.command("server1", 5.0, Command("standby", "all", request_id=1))
    sim.run_until(6)
    assert sim.vip_holders() == ["server2"]
    sim.command("server1", 6.0, Command("shutdown"))
    sim.run_until(8)
    sim.at(10, "boot", "server1")
    sim.run_until(15)
    assert sim.vip_holders() == ["server1"]
