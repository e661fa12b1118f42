"""Redundant heartbeat paths on a fake clock: each path's liveness, and what the log says about it."""

from __future__ import annotations

from hbvip.cluster.paths import PathChange, PathWatch, media_interfaces
from hbvip.config.media import Medium

DEADTIME = 1.0


def watch() -> PathWatch:
    return PathWatch("server2", ["eth0", "eth1"], DEADTIME)


def test_a_path_is_up_from_its_first_datagram_and_dead_after_deadtime_of_silence() -> None:
    w = watch()
    assert w.heard("eth0", 0.0) == [PathChange("server2", "eth0", True, False)]
    assert w.heard("eth1", 0.05) == [PathChange("server2", "eth1", True, True)]
    assert w.heard("eth0", 0.2) == [] and w.heard("eth1", 0.25) == []      # up stays up, nothing logged
    for t in (0.4, 0.6, 0.8, 1.0, 1.2):
        w.heard("eth0", t)                                                 # eth1 is cut at 0.25
    assert w.next_deadline() == 1.25
    assert w.check(1.24) == []
    assert w.check(1.25) == [PathChange("server2", "eth1", False, True)]  # one of two: the peer lives on
    assert w.check(1.3) == []                                             # reported once
    assert w.heard("eth1", 1.5) == [PathChange("server2", "eth1", True, True)]
    assert [(p.interface, p.up, p.datagrams) for p in w.paths.values()] == [("eth0", True, 7), ("eth1", True, 3)]


def test_both_paths_silent_die_and_the_last_one_says_no_other_path_is_up() -> None:
    w = watch()
    w.heard("eth0", 0.0)
    w.heard("eth1", 0.1)
    assert w.check(1.0) == [PathChange("server2", "eth0", False, True)]
    assert w.check(1.1) == [PathChange("server2", "eth1", False, False)]
    assert w.next_deadline() == float("inf")


def test_a_peer_restarting_in_place_keeps_its_paths_up_for_its_grace() -> None:
    w = watch()
    w.heard("eth0", 0.0)
    assert w.next_deadline(grace=10.0) == 10.0
    assert w.check(5.0, grace=10.0) == []                                 # the planned silence is no dead path
    assert w.check(10.0, grace=10.0) == [PathChange("server2", "eth0", False, False)]


def test_duplicate_copies_count_for_their_path_only_and_unknown_interfaces_for_none() -> None:
    """The same heartbeat on both paths: each path sees its copy (the membership keeps one)."""
    w = watch()
    w.heard("eth0", 0.0)
    w.heard("eth1", 0.0)
    assert w.heard("lo", 0.1) == [] and w.heard(None, 0.1) == []
    assert [p.datagrams for p in w.paths.values()] == [1, 1]


def test_paths_are_the_media_lines_interfaces_in_order() -> None:
    media = [Medium("ucast", "eth0", "server1", 1), Medium("ucast", "eth0", "server2", 2),
             Medium("ucast6", "eth1", "fd99::2", 3), Medium("bcast", "eth2", None, 4)]
    assert media_interfaces(media) == ["eth0", "eth1", "eth2"]
