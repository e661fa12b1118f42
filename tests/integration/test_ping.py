"""Heartbeat's `ping` tiebreaker and the periodic GARP refresh on a real lab pair (FAST timers: keepalive
200 ms, deadtime 1 s, deadping = deadtime). The ping node is the lab's client namespace, which is also
the machine the VIP must stay reachable from; "cut from the ping node" is an nft rule on the server that
drops its echo requests to the client, so heartbeats and the client's own traffic are untouched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from faults import config_snapshot, deafen, heal, matrix, nft, running_pair
from pair import Pair, calls, holds_for, wait_until


def cut_from_ping_node(pair: Pair, name: str) -> None:
    nft(pair.host(name), f"output ip daddr {pair.lab.client.address} icmp type echo-request drop")


@contextmanager
def pinged_pair(lab, extra: str = "", **kw) -> Iterator[Pair]:
    """The seed's pair with `ping <client>` (and `extra` lines) added to ha.cf on both hosts, server1 serving."""
    with running_pair(lab, start=False, **kw) as p:
        for host in lab.hosts.values():
            host.write("/etc/ha.d/ha.cf", host.read("/etc/ha.d/ha.cf") + f"ping {lab.client.address}\n{extra}")
        p.config_before = config_snapshot(lab)
        for a in p.agents.values():
            a.start()
        wait_until(lambda: p.holders() == {"server1"}, 10, "server1 to serve the VIP")
        p.stable()
        for a in p.agents.values():
            wait_until(lambda: a.status()["ping"]["reachable"], 5, "the ping node to answer")
        yield p


def test_partition_with_the_backup_cut_from_the_ping_node_keeps_one_holder(lab):
    with pinged_pair(lab) as p:
        s1, s2 = p.host("server1"), p.host("server2")
        a2 = p.agents["server2"]
        why = f"no ping node reachable ({lab.client.address})"
        cut_from_ping_node(p, "server2")
        # The ping node goes first here (a router port); the next test cuts both at once.
        wait_until(lambda: a2.status()["holding_nothing"] == why, p.timers.deadtime_s + 2, "server2 to lose ping")
        t0 = time.monotonic()
        deafen(s1, s2)
        deafen(s2, s1)
        wait_until(lambda: a2.status()["peer"]["state"] == "dead", p.deadline + 1, "server2 to declare server1 dead")
        # long enough for a wrong takeover to show
        holds_for(lambda: p.holders() == {"server1"}, p.deadline, "server1 alone serving")
        assert p.watch.max_holders(t0) == 1
        p.client_reaches("server1")
        st = a2.status()
        assert st["hold"] == "none" and st["holding_nothing"] == why
        assert st["ping"]["nodes"][0]["up"] is False
        assert f"holding nothing: {why}" in a2.cli("status").stdout
        log2 = a2.ha_log()
        assert "node server1: is dead" in log2 and f"Not taking over from server1: {why}" in log2
        assert f"Link {lab.client.address}:{lab.client.address} dead." in log2
        assert "server2" not in {h for _unused, h, action in calls(lab) if action == "start"}
        matrix("symmetric partition, backup also cut from the ping node", p.watch.max_holders(t0), 0.0,
               "server2 neither takes nor keeps: 'no ping node reachable'")
        heal(s1, s2)
        p.stable()
        wait_until(lambda: a2.status()["ping"]["reachable"], 5, "server2 to reach the ping node again")
        assert p.holders() == {"server1"}


def test_backup_losing_peer_and_ping_node_at_once_does_not_take(lab):
    """A cable pulled on server2: heartbeats and the ping node go in the same instant, and with the default
    deadping (= deadtime) the peer's death is due before the ping verdict. server2 holds the death back
    until a ping node answers after the heartbeats stopped; none does, so it never takes the VIP."""
    with pinged_pair(lab) as p:
        s1, s2 = p.host("server1"), p.host("server2")
        t0 = time.monotonic()
        cut_from_ping_node(p, "server2")
        deafen(s1, s2)
        deafen(s2, s1)
        wait_until(lambda: p.agents["server2"].status()["peer"]["state"] == "dead", p.deadline + 1, "server1 dead")
        holds_for(lambda: p.holders() == {"server1"}, p.deadline, "server1 alone serving")
        assert p.watch.max_holders(t0) == 1
        assert "server2" not in {h for _unused, h, action in calls(lab) if action == "start"}
        p.client_reaches("server1")
        log2 = p.agents["server2"].ha_log()
        assert log2.index("confirming a ping node answers before taking over") < log2.index("Not taking over")
        matrix("backup loses peer and ping node at once", p.watch.max_holders(t0), 0.0,
               "the death waits for the ping verdict: no takeover")


def test_holder_power_loss_with_ping_nodes_moves_the_vip_within_the_usual_deadline(lab):
    """The ping check costs nothing when the backup is fine: its probes answered after the last heartbeat."""
    with pinged_pair(lab) as p:
        t0 = time.monotonic()
        p.crash("server1", power=True)
        settle = p.settle("server2", t0, timeout=p.deadline)
        assert settle <= p.deadline, f"takeover took {settle:.2f} s"
        p.client_reaches("server2")
        assert "confirming a ping node answers" not in p.agents["server2"].ha_log()
        matrix("power loss of the holder, ping configured", p.watch.max_holders(t0), settle, "no delay from the ping check")


def test_holder_cut_from_the_ping_node_hands_the_vip_to_its_peer(lab):
    with pinged_pair(lab) as p:
        a1 = p.agents["server1"]
        why = f"no ping node reachable ({lab.client.address})"
        t0 = time.monotonic()
        cut_from_ping_node(p, "server1")
        settle = p.settle("server2", t0, timeout=p.timers.deadtime_s + p.deadline)
        p.client_reaches("server2")
        st = a1.status()
        assert st["hold"] == "none" and st["holding_nothing"] == why
        assert f"{why}: giving up all HA resources" in a1.ha_log()
        order = [(h, action) for _unused, h, action in calls(lab)][-3:]
        assert order == [("server1", "stop"), ("server2", "status"), ("server2", "start")]
        matrix("holder cut from the ping node (pair connected)", p.watch.max_holders(t0), settle,
               "holder releases ('ping lost'), peer takes the unclaimed group")
        t1 = time.monotonic()
        heal(p.host("server1"))                    # ping back: auto_failback brings the VIP home
        back = p.settle("server1", t1, timeout=p.timers.deadtime_s + p.deadline)
        p.client_reaches("server1")
        matrix("… ping node reachable again (auto_failback on)", p.watch.max_holders(t1), back,
               "home node asks for its group back (hb_takeover)")


def test_garp_refresh_repeats_from_the_holder_only(lab):
    with running_pair(lab, extensions="garp_refresh 1\n") as p:
        time.sleep(1.2)                           # the takeover burst is over
        arp = lab.arpwatch()
        try:
            t0 = time.monotonic()
            time.sleep(4.6)
            frames = arp.gratuitous_from(lab.vip, after=t0)
        finally:
            arp.stop()
        macs = {f.sender_mac for f in frames}
        assert macs == {p.host("server1").mac}, macs
        starts = sorted(f.time for f in frames)
        rounds = [t for i, t in enumerate(starts) if i == 0 or t - starts[i - 1] > 0.5]
        rounds = rounds[1:]                        # the first may be the tail of one that began before t0
        gaps = [round(b - a, 2) for a, b in zip(rounds, rounds[1:])]
        print("garp_refresh 1: intervals between announcements", gaps)
        assert len(rounds) >= 2, starts            # one announcement per second, not one burst
        assert all(0.8 < gap < 1.6 for gap in gaps), gaps
