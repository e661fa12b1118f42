"""Decisions the daemon used to make inline, now pure in `hbvip.cluster`: the deferral of a peer's death
until a ping node has spoken, the state of each group in `hbvip status`, and the plan of a reload.

All run on a fake clock (plain floats): no sockets, no sleeps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hbvip.cluster import (
    Command, CommandKind, Connectivity, Failover, Hold, Log, Op, PeerDead, PeerMessage, PeerUp, Phase, Reply,
    ResourcesDone, Send, Tick,
)
from hbvip.cluster.deferral import DeathDeferral
from hbvip.cluster.groups import GroupState, group_state, groups_of
from hbvip.cluster.phases import PHASE_CHANGES, PhaseError
from hbvip.cluster.pingnodes import PingNodes
from hbvip.cluster.reload import plan_reload
from hbvip.config import Config, load_config

KEEPALIVE = 1.0


def pinged(now: float = 0.0) -> PingNodes:
    return PingNodes(("10.99.0.254",), deadping=5.0, now=now)


def test_death_is_deferred_until_a_ping_answer_after_the_first_missing_heartbeat() -> None:
    nodes = pinged()
    nodes.answered("10.99.0.254", 9.5)           # before the peer's first missing beat (10 + 1 s)
    d = DeathDeferral(nodes)
    log = d.defer(PeerDead(), peer="server2", last_heard=10.0, keepalive=KEEPALIVE)
    assert log is not None and log.event == "peer.dead_deferred" and log.fields == {"node": "server2"}
    assert d.due("dead") is None                 # no proof yet, no verdict yet: still waiting
    nodes.answered("10.99.0.254", 12.0)          # proof that this node is not the one cut off
    assert d.due("dead") == PeerDead()
    assert d.due("dead") is None                 # handed over once


def test_deferred_death_goes_ahead_when_the_ping_verdict_is_unreachable() -> None:
    nodes = pinged()
    d = DeathDeferral(nodes)
    assert d.defer(PeerDead(), peer="server2", last_heard=1.0, keepalive=KEEPALIVE) is not None
    nodes.check(0.1)
    nodes.check(6.0)                              # deadping passed with no answer: unreachable
    assert nodes.reachable is False
    assert d.due("dead") == PeerDead()           # the failover machine refuses it and says why


def test_deferred_death_is_forgotten_when_the_peer_is_heard_again() -> None:
    nodes = pinged()
    d = DeathDeferral(nodes)
    assert d.defer(PeerDead(), peer="server2", last_heard=1.0, keepalive=KEEPALIVE) is not None
    assert d.due("active") is None
    nodes.answered("10.99.0.254", 20.0)
    assert d.due("dead") is None


def test_death_is_not_deferred_without_ping_nodes_or_with_proof_or_when_graceful() -> None:
    assert DeathDeferral(None).defer(PeerDead(), peer="p", last_heard=1.0, keepalive=KEEPALIVE) is None
    nodes = pinged()
    nodes.answered("10.99.0.254", 2.5)
    d = DeathDeferral(nodes)
    assert d.defer(PeerDead(), peer="p", last_heard=1.0, keepalive=KEEPALIVE) is None
    assert d.defer(PeerDead(graceful=True), peer="p", last_heard=5.0, keepalive=KEEPALIVE) is None
    assert d.defer(PeerDead(), peer="p", last_heard=None, keepalive=KEEPALIVE) is None
    assert d.pending is None


def running_machine() -> Failover:
    fo = Failover(me="server1", peer="server2", auto_failback="on", settle_timeout=2.0, handshake_timeout=30.0,
                  now=0.0)
    fo.handle(PeerDead(), 1.0)                   # alone: takes everything
    return fo


def test_group_state_names_work_in_progress_in_words_of_hbvip_status() -> None:
    fo = running_machine()
    assert fo.busy == (Op.ACQUIRE, Hold.ALL)
    assert group_state(fo, Hold.LOCAL) is GroupState.ACQUIRING
    assert GroupState.ACQUIRING.value == "acquiring" and not GroupState.ACQUIRING.settled
    fo.handle(ResourcesDone("acquire", Hold.ALL, True), 2.0)
    assert group_state(fo, Hold.LOCAL) is GroupState.HELD
    fo.target = Hold.LOCAL                        # as a standby of the foreign groups would
    fo.handle(Tick(), 3.0)
    assert fo.busy == (Op.RELEASE, Hold.FOREIGN)
    assert group_state(fo, Hold.FOREIGN) is GroupState.RELEASING
    assert GroupState.RELEASING.value == "releasing"
    assert group_state(fo, Hold.LOCAL) is GroupState.HELD


def test_group_state_of_groups_this_node_does_not_serve() -> None:
    fo = Failover(me="server1", peer="server2", auto_failback="on", settle_timeout=2.0, handshake_timeout=30.0,
                  now=0.0)
    assert group_state(fo, Hold.LOCAL) is GroupState.UNSERVED
    fo.peer_held = Hold.FOREIGN
    assert group_state(fo, Hold.FOREIGN) is GroupState.HELD_BY_PEER
    fo.failed = Hold.LOCAL
    assert group_state(fo, Hold.LOCAL) is GroupState.FAILED
    assert {s.value for s in GroupState if s.settled} == {"held", "held_by_peer", "unserved", "failed"}


def two_groups(config_dir: Path, second: str = "server2 IPaddr::10.99.0.101/24/eth0") -> Config:
    text = (config_dir / "haresources").read_text()
    (config_dir / "haresources").write_text(text + second + "\n")
    return load_config(config_dir, "server1", init_dir=config_dir / "init.d")


def test_groups_of_a_category_keep_haresources_order(config_dir: Path) -> None:
    cfg = two_groups(config_dir)
    assert [g.home_node for g in groups_of(cfg.groups, "SERVER1", Hold.ALL)] == ["server1", "server2"]
    assert [g.key for g in groups_of(cfg.groups, "server1", Hold.FOREIGN)] == ["IPaddr::10.99.0.101/24/eth0"]


def test_reload_plan_touches_only_held_groups_that_changed(config_dir: Path) -> None:
    old = load_config(config_dir, "server1", init_dir=config_dir / "init.d")
    new = two_groups(config_dir)
    plan = plan_reload(old, new, Hold.ALL)
    assert plan.renamed is None and plan.release == () and plan.at_restart == ()
    assert [g.key for g in plan.acquire] == ["IPaddr::10.99.0.101/24/eth0"]
    assert plan_reload(old, new, Hold.LOCAL).acquire == ()        # the peer's new group is not ours to start


def test_reload_plan_of_a_rolling_rename_keeps_the_peers_groups(config_dir: Path) -> None:
    old = two_groups(config_dir)
    hacf = config_dir / "ha.cf"
    hacf.write_text(hacf.read_text().replace("server2", "server2b"))
    hares = config_dir / "haresources"
    hares.write_text(hares.read_text().replace("server2 ", "server2b "))
    new = load_config(config_dir, "server1", init_dir=config_dir / "init.d")
    plan = plan_reload(old, new, Hold.ALL)
    assert plan.renamed == ("server2", "server2b")
    assert plan.release == () and plan.acquire == ()


def test_reload_plan_names_what_waits_for_a_restart(config_dir: Path) -> None:
    old = load_config(config_dir, "server1", init_dir=config_dir / "init.d")
    hacf = config_dir / "ha.cf"
    hacf.write_text(hacf.read_text() + "ping 10.99.0.254\n")
    plan = plan_reload(old, load_config(config_dir, "server1", init_dir=config_dir / "init.d"), Hold.ALL)
    assert plan.at_restart == ("ping/deadping changes take effect at the next restart",)


def test_every_phase_change_is_checked_against_the_table() -> None:
    fo = running_machine()
    assert fo.phase is Phase.RUNNING
    with pytest.raises(PhaseError, match="running -> starting"):
        fo._enter(Phase.STARTING)
    assert fo.phase is Phase.RUNNING
    fo.handle(Command("shutdown"), 2.0)
    assert fo.phase is Phase.SHUTDOWN
    fo.handle(Command("shutdown"), 2.1)          # a second SIGTERM: staying put is no change
    assert fo.phase is Phase.SHUTDOWN


def test_the_table_reaches_every_phase_and_stops_at_stopped() -> None:
    reached = {Phase.WAITING} | {p for targets in PHASE_CHANGES.values() for p in targets}
    assert reached == set(Phase)
    assert PHASE_CHANGES[Phase.STOPPED] == frozenset()


def test_commands_and_operations_are_enums_from_the_edge_on() -> None:
    assert Command("standby").kind is CommandKind.STANDBY
    assert ResourcesDone("release", Hold.ALL, True).op is Op.RELEASE
    with pytest.raises(ValueError):
        Command("reboot")


def pinged_running_beside_a_holding_peer() -> Failover:
    """Ping configured and reachable; the peer is alive, stable and holds everything."""
    fo = Failover(me="server1", peer="server2", auto_failback="on", settle_timeout=2.0, handshake_timeout=30.0,
                  now=0.0, ping=True)
    fo.handle(Connectivity(True), 0.1)
    fo.handle(PeerUp(), 0.2)
    fo.handle(PeerMessage("resource", {"rsc_hold": "all", "isstable": "1"}), 0.3)
    assert fo.phase is Phase.RUNNING and fo.peer_held == Hold.ALL
    return fo


def test_losing_the_ping_nodes_aborts_a_pending_takeover_request() -> None:
    fo = pinged_running_beside_a_holding_peer()
    assert fo.handle(Command("takeover", "local", 7), 0.4) == [Send("hb_takeover", (("rsc_hold", "local"),))]
    out = fo.handle(Connectivity(False, ("10.99.0.254",)), 0.5)
    assert Reply(7, False, "takeover aborted: no ping node reachable (10.99.0.254)") in out
    assert fo.takeover_request is None


def test_losing_the_ping_nodes_aborts_a_standby_this_node_was_taking() -> None:
    fo = pinged_running_beside_a_holding_peer()
    out = fo.handle(PeerMessage("ask_resources", {"rsc_hold": "local", "info": "me"}), 0.4)
    assert fo.handshake is not None and fo.handshake.role == "taker"
    assert Send("ask_resources", (("rsc_hold", "local"), ("info", "other"))) in out
    out = fo.handle(Connectivity(False, ("10.99.0.254",)), 0.5)
    aborted = [a for a in out if isinstance(a, Log) and a.event == "standby.aborted"]
    assert aborted and aborted[0].fields == {"role": "taker", "step": "accepted"}
    assert fo.handshake is None
