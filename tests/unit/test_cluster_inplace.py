"""Restarting an agent in place (`hbvip restart-in-place`) under a fake clock: the holder keeps its VIP,
its peer waits a bounded grace instead of taking over, and the successor continues where it stopped."""

from __future__ import annotations

import pytest

from cluster_sim import DEADTIME, Sim
from hbvip.cluster import Command, Hold, Incoming, Membership, Phase
from hbvip.cluster.grace import GRACE_FIELD, RESTART_GRACE, RESTARTING_FIELD
from hbvip.cluster.inplace import RestartRecord, resumed_peer, stale_because
from hbvip.records import replace

GEN = 0x6b073ce9


def settled(auto_failback: str = "on") -> Sim:
    sim = Sim(auto_failback)
    sim.run_until(20)
    assert sim.vip_holders() == ["server1"]
    return sim


def holders_until(sim: Sim, t_end: float, step: float = 0.05) -> set[tuple[str, ...]]:
    """Every set of VIP holders seen from now until `t_end`."""
    seen = set()
    while sim.t < t_end:
        sim.run_until(sim.t + step)
        seen.add(tuple(sim.vip_holders()))
    return seen


def events(sim: Sim, name: str) -> list[str]:
    return [log.event for log in sim.nodes[name].logs]


@pytest.mark.parametrize("auto_failback", ["on", "off"])
def test_a_holder_restarting_in_place_keeps_the_vip_and_its_peer_waits_past_the_deadtime(auto_failback):
    sim = settled(auto_failback)
    calls = list(sim.calls)
    downtime = DEADTIME + 2            # longer than the dead time: only the grace keeps server2 waiting
    assert sim.restart_in_place("server1", 20.0, downtime) is None
    assert holders_until(sim, 60) == {("server1",)}
    assert sim.calls == calls and sim.releases == []          # no stop, no start, no release anywhere
    assert "peer.dead" not in events(sim, "server2")
    assert events(sim, "server2").count("peer.restarting") == 1
    assert "peer.resumed" in events(sim, "server2") and "peer.late" not in events(sim, "server2")
    s1, s2 = sim.nodes["server1"], sim.nodes["server2"]
    assert "restart.resumed" in events(sim, "server1")
    assert (s1.failover.phase, s1.failover.held, s1.failover.stable) == (Phase.RUNNING, Hold.LOCAL, True)
    assert s1.failover.peer_alive and s2.failover.peer_stable and s2.failover.peer_held == Hold.FOREIGN
    assert s2.membership.peer.hg == s1.hg                        # no restart as far as the peer can tell
    assert s1.membership.peer.status == "active" and "packet.gap" not in events(sim, "server1")


def test_after_the_restart_a_real_failure_is_noticed_within_the_deadtime_again():
    sim = settled()
    sim.restart_in_place("server1", 20.0, 1.0)
    sim.run_until(30)
    sim.power_loss("server1", 30.0)
    took = sim.first_time_holder("server2", 30.0)
    assert took is not None and took <= 30.0 + DEADTIME + 0.2


def test_the_grace_is_bounded_a_successor_that_never_comes_is_declared_dead():
    sim = settled()
    sim.restart_in_place("server1", 20.0, None)
    took = sim.first_time_holder("server2", 20.0)
    # the grace is max(deadtime, RESTART_GRACE) from the hinted heartbeat, once
    assert took is not None and 20.0 + RESTART_GRACE <= took <= 20.0 + RESTART_GRACE + 0.2
    assert "peer.dead" in events(sim, "server2")


def test_the_standby_node_restarts_in_place_too_and_the_holder_does_not_notice():
    sim = settled()
    assert sim.restart_in_place("server2", 20.0, 1.5) is None
    assert holders_until(sim, 40) == {("server1",)}
    assert "link.up" not in events(sim, "server1")[-5:] and "peer.restart" not in events(sim, "server1")
    assert sim.nodes["server2"].failover.stable


def test_refused_when_the_peer_grants_no_grace_as_heartbeat_does():
    sim = Sim()
    sim.nodes["server2"].grants_grace = False
    sim.run_until(20)
    why = sim.restart_in_place("server1", 20.0, 1.0)
    assert why is not None and "would not wait" in why and "standby" in why
    assert sim.nodes["server1"].kept is None


def test_refused_while_a_move_is_under_way():
    sim = settled()
    sim.command("server1", 20.0, Command("standby", "all", 1))
    sim.run_until(20.0 + 3 * sim.latency)
    why = sim.restart_in_place("server1", sim.t, 1.0)
    assert why is not None and "under way" in why


def test_refused_before_the_pair_settled():
    sim = Sim()
    why = sim.restart_in_place("server1", 0.0, 1.0)
    assert why is not None and "waiting" in why


def test_a_dead_peer_does_not_stop_a_restart_in_place():
    sim = settled()
    sim.power_loss("server2", 20.0)
    sim.run_until(30)
    assert sim.restart_in_place("server1", 30.0, 1.0) is None
    assert holders_until(sim, 40) == {("server1",)}
    assert sim.nodes["server1"].membership.peer.status == "dead"


# ---- the record --------------------------------------------------------------------------------

RECORD = RestartRecord(node="server1", peer="server2", generation=GEN, seq=41, written_at=1000.0, max_age=10.0,
                       held=Hold.LOCAL, failed=Hold.NONE, peer_held=Hold.NONE, peer_stable=True, needs_failback=False,
                       peer_status="active", peer_hg=7, peer_max_seq=90, peer_dt=1.0, peer_uuid="00ff",
                       groups=("IPaddr::10.99.0.100/24/eth0",), version="1.0")


def test_the_record_reads_back_what_was_written():
    assert RestartRecord.from_json(RECORD.to_json()) == RECORD


@pytest.mark.parametrize("text", ["", "[]", '{"format": 99}', RECORD.to_json().replace('"local"', '"most"'),
                                  RECORD.to_json().replace('"seq"', '"sequence"')])
def test_an_unreadable_record_is_a_value_error(text):
    with pytest.raises(ValueError):
        RestartRecord.from_json(text)


@pytest.mark.parametrize(("change", "now", "why"), [
    ({}, 1009.0, None),
    ({"node": "server9"}, 1001.0, "written by node server9"),
    ({"peer": "server7"}, 1001.0, "for peer server7"),
    ({"generation": GEN - 1}, 1001.0, "hb_generation"),
    ({}, 1010.5, "10.5 s old"),
    ({}, 990.0, "-10.0 s old"),            # the wall clock went back: nothing says how old it is
])
def test_only_a_fresh_record_of_this_node_and_generation_is_continued(change, now, why):
    record = replace(RECORD, **change)
    found = stale_because(record, node="server1", peer="server2", generation=GEN, now=now)
    assert (found is None) if why is None else (why in found)


# ---- the peer's grace and the successor's view of the peer (membership) ------------------------

def beat(seq: int, **fields: str) -> Incoming:
    return Incoming("status", "server1", GEN, seq, {"st": "active", "dt": "3e8", GRACE_FIELD: "2710", **fields})


def test_the_peer_gives_a_restarting_node_max_deadtime_and_grace_once_and_the_next_beat_ends_it():
    m = Membership("server2", "server1", deadtime=1.0, warntime=0.5, initdead=2, now=0.0)
    for seq in range(1, 4):
        m.receive(beat(seq), seq * 0.2)
    assert m.peer.grants_grace == 10.0 and m.dead_after() == 1.0
    m.receive(beat(4, **{RESTARTING_FIELD: "1"}), 0.8)
    _unused, _unused, again = m.receive(beat(5, **{RESTARTING_FIELD: "1"}), 0.8)
    assert m.dead_after() == RESTART_GRACE and not [a for a in again if getattr(a, "event", "") == "peer.restarting"]
    assert m.check(0.8 + RESTART_GRACE - 0.01)[0] == []
    _unused, _unused, actions = m.receive(beat(6), 3.0)      # back after 2.2 s: no late heartbeat, a return
    assert [a.event for a in actions if hasattr(a, "event")] == ["peer.resumed"]
    assert m.dead_after() == 1.0
    assert m.check(4.05)[0] != []                                # a silence after it is a death again


def test_a_heartbeat_without_the_grace_field_grants_nothing():
    m = Membership("server2", "server1", deadtime=1.0, warntime=0.5, initdead=2, now=0.0)
    m.receive(Incoming("status", "server1", GEN, 1, {"st": "active", "dt": "3e8"}), 0.1)
    assert m.peer.grants_grace == 0.0


def test_the_successor_takes_the_peers_next_sequence_number_as_its_base_even_far_ahead():
    m = Membership("server1", "server2", deadtime=1.0, warntime=0.5, initdead=2, now=0.0)
    m.peer = resumed_peer(replace(RECORD, peer_hg=GEN), now=5.0)
    jump = RECORD.peer_max_seq + 500          # far more than MAX_GAP heartbeats of the peer went unheard
    reason, events, actions = m.receive(Incoming("status", "server2", GEN, jump, {"st": "active"}), 5.1)
    assert reason is None and events == []                  # not a restart, not a return: the same peer
    assert not [a for a in actions if getattr(a, "event", "") in ("packet.gap", "peer.late")]
    assert m.receive(Incoming("status", "server2", GEN, jump - 1, {"st": "active"}), 5.2)[0] == "duplicate"
    assert m.peer.max_seq == jump
