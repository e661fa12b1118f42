"""Ping-node bookkeeping (pure, fake clock) and how `hbvip status` / metrics show it."""

from __future__ import annotations

from status_samples import samples, status

from hbvip.status_table import render_status
from hbvip.cluster import Connectivity
from hbvip.cluster.pingnodes import PingNodes
from hbvip.metrics import render

A, B = "10.99.0.254", "10.99.0.253"


def classic(actions: list) -> list[str]:
    return [a.classic for a in actions]


def test_first_answer_makes_the_node_reachable_and_silence_for_deadping_takes_it_away():
    nodes = PingNodes((A, B), deadping=2.0, now=0.0)
    assert nodes.check(0.5) == ([], [])                  # nothing answered yet, nothing decided yet
    nodes.answered(A, 0.6)
    events, actions = nodes.check(0.6)
    assert events == [Connectivity(True)] and classic(actions) == [f"Link {A}:{A} up."]
    nodes.answered(A, 1.6)
    assert nodes.check(1.9) == ([], [])                  # B never answered, but deadping has not passed
    events, actions = nodes.check(2.5)
    assert events == [] and classic(actions) == [f"Link {B}:{B} dead."]     # A still reaches: no event
    events, actions = nodes.check(3.7)
    assert events == [Connectivity(False, (A, B))] and classic(actions) == [f"Link {A}:{A} dead."]
    assert nodes.unreachable(3.7) == (A, B)


def test_no_answer_at_all_is_reported_once_deadping_has_passed():
    nodes = PingNodes((A,), deadping=1.0, now=10.0)
    assert nodes.check(10.9)[0] == []
    assert nodes.check(11.0)[0] == [Connectivity(False, (A,))]
    assert nodes.check(12.0) == ([], [])                 # reported once, not every round


def test_status_text_lists_ping_nodes_and_why_nothing_is_held():
    st = status(ping={"reachable": False, "deadping_s": 1.0,
                      "nodes": [{"address": A, "up": False, "last_answer_s": 4.25},
                                {"address": B, "up": False, "last_answer_s": None}]},
                holding_nothing=f"no ping node reachable ({A}, {B})", hold="none")
    lines = render_status(st).splitlines()
    pinged = [ln.split() for ln in lines if ln.startswith("ping")]
    assert pinged == [["ping", A, "down", "answered", "4.2s", "ago", "dead", "after", "1s"],
                      ["ping", B, "down", "never", "answered", "dead", "after", "1s"]]
    assert lines[-1] == f"holding nothing: no ping node reachable ({A}, {B})"


def test_status_text_without_ping_lines_is_unchanged():
    lines = render_status(status(ping=None, holding_nothing=None)).splitlines()
    assert not [ln for ln in lines if ln.startswith(("ping", "holding nothing"))]


def test_ping_node_gauge():
    st = status(ping={"reachable": True, "deadping_s": 1.0,
                      "nodes": [{"address": A, "up": True, "last_answer_s": 0.1},
                                {"address": B, "up": False, "last_answer_s": None}]})
    got = samples(render(st))
    assert got[("hbvip_ping_node_up", frozenset({("node", A)}))] == 1
    assert got[("hbvip_ping_node_up", frozenset({("node", B)}))] == 0
    assert not [k for k in samples(render(status())) if k[0] == "hbvip_ping_node_up"]


def test_answered_since_is_the_proof_a_peer_death_waits_for():
    nodes = PingNodes((A, B), deadping=2.0, now=0.0)
    assert not nodes.answered_since(0.0)
    nodes.answered(B, 1.0)
    assert nodes.answered_since(1.0) and not nodes.answered_since(1.01)
