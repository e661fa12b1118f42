"""IPv6 in the lab: a dual-stack pair moves an IPv6 VIP (IPv6addr) beside the IPv4 one, and the client's
neighbour entry follows the unsolicited neighbour advertisements of the new holder.

Everything is real: namespaces with fd99:N::/64 on the bridge (no DAD), the VIP added by netlink with
`nodad`, neighbour advertisements on the bridge, UDP probes over IPv6 from the client namespace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from lab import Lab
from pair import FAST, Pair, has_vip, has_vip6, holds_for, wait_until

#: How late the first IPv6 answer from the new holder may come after the last one from the old holder.
#: Without the advertisements the client would keep the dead MAC until neighbour unreachability
#: detection gives up (5 s DELAY + 3 probes), far beyond this.
MOVE_SLACK = 0.1


@pytest.fixture
def pair6(lab_factory: Callable[..., Lab]) -> Iterator[Pair]:
    p = Pair(lab_factory(ipv6=True))
    try:
        yield p
    finally:
        p.close()


def test_dual_stack_pair_moves_the_ipv6_vip_on_power_loss_and_back(pair6: Pair) -> None:
    lab = pair6.lab
    a1, a2 = pair6.start(FAST, haresources=(
        f"server1 IPaddr::{lab.vip}/24/eth0 IPv6addr::{lab.vip6}/64/eth0 failback.sh\n"))
    probe6 = lab.probe(target=lab.vip6)
    try:
        # 1. server1 serves both VIPs; the client reaches the IPv6 one at server1's MAC
        probe6.wait_for("server1", timeout=15)
        assert has_vip(lab, "server1") and not has_vip6(lab, "server2")
        assert lab.client_neigh(lab.vip6) == lab.hosts["server1"].mac
        pair6.stable()
        status = a1.status()
        assert [g["vips"] for g in status["groups"]] == [[lab.vip, lab.vip6]]
        assert status["groups"][0]["holder"] == "server1"

        # 2. power loss of server1: server2 takes both; the client's entry moves with the advertisements
        t_fault = time.monotonic()
        lab.hosts["server1"].power_loss([a1.proc])
        t_served = probe6.wait_for("server2", timeout=FAST.deadtime_s + 3, after=t_fault)
        assert has_vip(lab, "server2") and has_vip6(lab, "server2")
        assert lab.client_neigh(lab.vip6) == lab.hosts["server2"].mac
        gap = probe6.snapshot().longest_gap()
        assert gap <= FAST.deadtime_s + MOVE_SLACK, f"IPv6 probe gap {gap:.3f} s (takeover {t_served - t_fault:.3f} s)"
        log2 = a2.ha_log()
        assert "Resources being acquired from server1." in log2
        assert "event=resource.call name=IPv6addr action=start rc=0" in log2
        assert f"event=garp.sent iface=eth0 ip={lab.vip6} frames=5" in wait_until(
            lambda: f"ip={lab.vip6} frames=5" in a2.ha_log() and a2.ha_log(), 3, "server2's advertisement burst")

        # 3. server1 comes back: failback moves the IPv6 VIP and the client's entry home again
        lab.hosts["server1"].power_on()
        t_back = time.monotonic()
        pair6.agent("server1")
        probe6.wait_for("server1", timeout=15, after=t_back)
        wait_until(lambda: not has_vip6(lab, "server2"), 5, "server2 to drop the IPv6 VIP")
        assert lab.client_neigh(lab.vip6) == lab.hosts["server1"].mac
        result = probe6.stop()
        assert result.holders() == ["server1", "server2", "server1"]
        print(f"\nIPv6 VIP: takeover {t_served - t_fault:.3f} s after power loss, probe gap {gap:.3f} s "
              f"(deadtime {FAST.deadtime_s} s), failback gap {result.longest_gap():.3f} s")
    finally:
        probe6.stop()


@pytest.mark.parametrize("medium", ["ucast6", "mcast6"])
def test_ipv6_only_pair_heartbeats_and_fails_over(pair6: Pair, medium: str) -> None:
    """No IPv4 at all on the hosts: `ucast6` (or `mcast6`, a link-local group through the bridge)
    heartbeats, an IPv6addr VIP, takeover on power loss."""
    lab = pair6.lab
    for host in lab.hosts.values():
        host.run(["ip", "addr", "del", f"{host.address}/24", "dev", host.iface])
        assert host.addresses() == []
    media = ("".join(f"ucast6 eth0 {h.address6}\n" for h in lab.hosts.values()) if medium == "ucast6"
             else "mcast6 eth0 ff12::1:2:3:4 694 1 0\n")
    a1, a2 = pair6.start(FAST, media=media, haresources=f"server1 IPv6addr::{lab.vip6}/64/eth0 failback.sh\n")
    probe6 = lab.probe(target=lab.vip6)
    try:
        probe6.wait_for("server1", timeout=15)
        pair6.stable()
        # "stable" is the node's own state; the peer turns from up to active a turn later.
        status = wait_until(lambda: (s := a2.status())["peer"]["state"] == "active" and s, 5,
                            "server2 to see its peer active")
        assert [(p["interface"], p["up"]) for p in status["paths"]] == [("eth0", True)]
        assert status["groups"][0]["holder"] == "server1" and not has_vip6(lab, "server2")

        t_fault = time.monotonic()
        lab.hosts["server1"].power_loss([a1.proc])
        t_served = probe6.wait_for("server2", timeout=FAST.deadtime_s + 3, after=t_fault)
        assert t_served - t_fault <= FAST.deadtime_s + 0.5, f"takeover took {t_served - t_fault:.3f} s"
        assert "node server1: is dead" in a2.ha_log()
        assert lab.client_neigh(lab.vip6) == lab.hosts["server2"].mac
    finally:
        probe6.stop()


@pytest.fixture
def two_paths(lab_factory: Callable[..., Lab]) -> Iterator[Pair]:
    """Two networks: eth0 (IPv4, the LAN) and eth1 (IPv6, the dedicated heartbeat cable) on two bridges."""
    p = Pair(lab_factory(second_network=True))
    try:
        yield p
    finally:
        p.close()


def test_losing_one_of_two_paths_is_a_warning_losing_both_a_failover(two_paths: Pair) -> None:
    lab = two_paths.lab
    media = "ucast eth0 server1\nucast eth0 server2\n" + "".join(
        f"ucast6 eth1 {lab.addr6_second(i)}\n" for i in (1, 2))
    a1, a2 = two_paths.start(FAST, media=media)
    two_paths.probe.wait_for("server1", timeout=15)
    two_paths.stable()

    def paths(agent: object) -> dict[str, bool]:
        return {p["interface"]: p["up"] for p in agent.status()["paths"]}   # type: ignore[attr-defined]

    wait_until(lambda: paths(a1) == paths(a2) == {"eth0": True, "eth1": True}, 5, "both paths up on both nodes")
    assert "Link server2:eth1 up." in a1.ha_log() and "Link server1:eth0 up." in a2.ha_log()

    # 1. cut eth1 of server2: both nodes name the dead path, nobody fails over, the VIP stays
    t_cut = time.monotonic()
    lab.cut("server2", "eth1")
    wait_until(lambda: paths(a1)["eth1"] is False and paths(a2)["eth1"] is False, FAST.deadtime_s + 2,
               "the eth1 path to die on both nodes")
    t_named = time.monotonic()
    assert "WARN: Link server2:eth1 dead." in a1.ha_log() and "WARN: Link server1:eth1 dead." in a2.ha_log()
    holds_for(lambda: two_paths.holders() == {"server1"} and a2.status()["peer"]["state"] == "active",
              2 * FAST.deadtime_s, "server1 holding the VIP with one path")
    assert paths(a1) == {"eth0": True, "eth1": False}
    assert "is dead" not in a2.ha_log() and two_paths.probe.snapshot().gaps() == []
    table = a1.cli("status").stdout
    assert any(line.split()[:3] == ["path", "server2:eth1", "dead"] for line in table.splitlines())

    # 2. heal: the path comes back up, logged as Heartbeat does
    lab.heal("server2", "eth1")
    wait_until(lambda: paths(a1)["eth1"] and paths(a2)["eth1"], 5, "the eth1 path to come back")
    assert "Link server2:eth1 up." in a1.ha_log().split("Link server2:eth1 dead.")[-1]

    # 3. both paths cut: now the peer is dead and server2 takes over (a split brain, as with one cable)
    t_both = time.monotonic()
    lab.cut("server1", "eth0")
    lab.cut("server1", "eth1")
    wait_until(lambda: "server2" in two_paths.holders(), FAST.deadtime_s + 3, "server2 to take over")
    took = time.monotonic() - t_both
    assert "node server1: is dead" in a2.ha_log()
    print(f"\ntwo paths: eth1 cut -> dead path named after {t_named - t_cut:.3f} s, no failover; "
          f"both cut -> server2 holds after {took:.3f} s (deadtime {FAST.deadtime_s} s)")


def test_a_reload_adds_a_second_path_and_refuses_to_drop_the_live_one(two_paths: Pair) -> None:
    """Media lines follow a reload: the new path's sockets open and it gets its own liveness; a reload
    that would keep none of the paths the peer is heard on is refused and changes nothing."""
    lab = two_paths.lab
    eth0 = "ucast eth0 server1\nucast eth0 server2\n"
    eth1 = "".join(f"ucast6 eth1 {lab.addr6_second(i)}\n" for i in (1, 2))
    a1, a2 = two_paths.start(FAST, media=eth0)
    two_paths.probe.wait_for("server1", timeout=15)
    two_paths.stable()

    def paths(agent: object) -> dict[str, bool]:
        return {p["interface"]: p["up"] for p in agent.status()["paths"]}   # type: ignore[attr-defined]

    assert paths(a1) == {"eth0": True}

    # 1. add eth1 on both nodes, reload both: the new path comes up on both
    two_paths.install(FAST, media=eth0 + eth1)
    for agent in (a1, a2):
        assert agent.cli("reload").stdout.strip() == "hbvip reload: reloaded"
    wait_until(lambda: paths(a1) == paths(a2) == {"eth0": True, "eth1": True}, 5, "eth1 up on both nodes")
    assert "Link server2:eth1 up." in a1.ha_log() and "event=path.added node=server2 interface=eth1" in a1.ha_log()

    # 2. cut it: a warning naming it, no failover
    lab.cut("server2", "eth1")
    wait_until(lambda: paths(a1)["eth1"] is False, FAST.deadtime_s + 2, "the eth1 path to die")
    assert "WARN: Link server2:eth1 dead." in a1.ha_log()
    table = a1.cli("status").stdout
    assert any(line.split()[:3] == ["path", "server2:eth1", "dead"] for line in table.splitlines())
    holds_for(lambda: two_paths.holders() == {"server1"}, FAST.deadtime_s, "server1 holding the VIP")

    # 3. a reload to eth1 alone would keep none of the live paths: refused, nothing changes
    two_paths.install(FAST, media=eth1)
    refused = a1.cli("reload", check=False)
    assert refused.returncode != 0
    assert "keep none of the paths server2 is heard on now (eth0)" in refused.stdout + refused.stderr
    assert paths(a1) == {"eth0": True, "eth1": False}
    assert "event=reload.refused" in a1.ha_log() and two_paths.probe.snapshot().gaps() == []
