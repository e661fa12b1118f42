"""IPv4 multicast heartbeats: a pair whose only media line is Heartbeat's `mcast eth0 <group> <port>
<ttl> <loop>` forms, shows the path in `hbvip status`, and fails over on power loss.

Everything is real: both agents join 239.99.0.1 on the lab bridge (administratively scoped, TTL 1, so
it stays there), there is no `ucast` line and so no unicast target at all, and server1's power loss is
its link going down with the VIP gone.
"""

from __future__ import annotations

import time

from pair import FAST, Pair, wait_until

GROUP = "239.99.0.1"
MEDIA = f"mcast eth0 {GROUP} 694 1 0\n"


def test_mcast_only_pair_forms_shows_the_path_and_fails_over(pair: Pair) -> None:
    lab = pair.lab
    a1, a2 = pair.start(FAST, media=MEDIA)
    pair.probe.wait_for("server1", timeout=15)
    pair.stable()

    # 1. the pair formed over the group alone: each kernel has joined it, each node heard the other on eth0
    for name in ("server1", "server2"):
        assert GROUP in lab.hosts[name].run(["ip", "-4", "maddr", "show", "dev", "eth0"]).stdout
    for agent, peer in ((a1, "server2"), (a2, "server1")):
        # "stable" is the node's own state; the peer turns from up to active a turn later.
        status = wait_until(lambda a=agent: (s := a.status())["peer"]["state"] == "active" and s, 5,
                            f"{agent.host.name} to see its peer active")
        assert status["peer"]["addresses"] == []   # no ucast target
        assert [(p["interface"], p["up"], p["media"]) for p in status["paths"]] == [
            ("eth0", True, [f"mcast eth0 {GROUP}:694"])]
        assert status["paths"][0]["datagrams"] > 0
        assert f"Link {peer}:eth0 up." in agent.ha_log()
    table = a2.cli("status").stdout.splitlines()
    assert f"link   mcast eth0 {GROUP}:694" in table
    assert any(line.split()[:3] == ["path", "server1:eth0", "up"] for line in table)
    assert not any("ucast" in line for line in table)

    # 2. power loss of server1: server2 takes the VIP within deadtime + 2 keepalives, the path dies
    t_fault = time.monotonic()
    pair.crash("server1", power=True)
    took = pair.serves("server2", after=t_fault, timeout=pair.deadline + 3)
    assert took <= pair.deadline, f"takeover took {took:.3f} s (deadline {pair.deadline:.1f} s)"
    # The path dies deadtime after the last datagram heard on it, the node deadtime after its last
    # heartbeat: a datagram that is no heartbeat (an ack) can make the path die a turn later.
    wait_until(lambda: "node server1: is dead" in a2.ha_log() and "WARN: Link server1:eth0 dead." in a2.ha_log(), 3,
               "server2 to declare server1 and its path dead")
    # The VIP answers from server2 before its last resource script has run and the group is held.
    status = wait_until(lambda: (s := a2.status())["groups"][0]["holder"] == "server2" and s, 5,
                        "server2 to hold the group")
    assert [(p["interface"], p["up"]) for p in status["paths"]] == [("eth0", False)]
    assert pair.holders() == {"server2"}
    print(f"\nmcast {GROUP}: server2 serves the VIP {took:.3f} s after server1's power loss "
          f"(deadtime {FAST.deadtime_s} s)")
