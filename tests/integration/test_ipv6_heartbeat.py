"""Mixed IPv6 pairs: the agent next to Debian's real `heartbeat` 3.0.6 over `ucast6` (and `mcast6`), with
an `IPv6addr` VIP, in both roles. Heartbeat runs its own IPv6addr resource agent (the OCF binary under
/usr/lib/ocf/resource.d/heartbeat) through /etc/ha.d/resource.d/IPv6addr; the agent runs its netlink
one. Either way the client's neighbour entry for the VIP must follow the holder.

Heartbeat's ResourceManager splits a resource at every `::`, so `IPv6addr::fd99:6::100/64/eth0` reaches
its IPv6addr as two arguments ("usage: IPv6addr <ip-address> ..."): a haresources line both daemons run
writes the address without `::` compression, as here.

Heartbeat's IPv6addr wrapper maps `status` to the OCF agent's `monitor`, which sends one ICMPv6 echo to
the VIP and counts *any* ICMPv6 packet already queued on its raw socket as the answer. A port-unreachable
from a peer host where nothing listens on udpport yet is such a packet: Heartbeat then believes it holds
the VIP and never starts it (ha-log: "IPv6addr ... Running OK", "Local Resource acquisition completed.
(none)"; measured in the lab: 3 of 20 `monitor` calls answer 0 while the peer sends unreachables, 0 of
20 when it is quiet). So here the agent listens on the peer host before Heartbeat starts.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterator

import pytest

from hbpeer import MixedPair, formed, install_mixed
from lab import Lab
from lab.probe import Probe
from pair import FAST, calls, has_vip6, wait_until

DEADTIME = FAST.deadtime_s
#: Heartbeat advertises deadtime + 2 s for its first 5 s; faults are injected after that.
HB_SETTLE = 5.5


MCAST6 = "mcast6 eth0 ff12::1:2:3:4 694 1 0\n"


@pytest.fixture
def mixed6(lab_factory: Callable[..., Lab], request: pytest.FixtureRequest) -> Iterator[tuple[MixedPair, Probe]]:
    """A dual-stack lab whose pair heartbeats over `ucast6` only (or the `mcast6` group, with the
    parameter "mcast6") and serves one IPv6addr VIP."""
    lab = lab_factory(ipv6=True)
    media = (MCAST6 if getattr(request, "param", "ucast6") == "mcast6"
             else "".join(f"ucast6 eth0 {h.address6}\n" for h in lab.hosts.values()))
    install_mixed(lab, FAST, media=media, haresources=f"server1 IPv6addr::{uncompressed(lab.vip6)}/64/eth0 failback.sh\n")
    pair = MixedPair(lab, FAST)
    probe6 = lab.probe(target=lab.vip6)
    try:
        yield pair, probe6
    finally:
        probe6.stop()
        pair.close()


def uncompressed(address: str) -> str:
    """fd99:6::100 -> fd99:6:0:0:0:0:0:100, the form Heartbeat's ResourceManager passes on whole."""
    return ":".join(f"{int(group, 16):x}" for group in ipaddress.IPv6Address(address).exploded.split(":"))


def _moved_to(lab: Lab, probe6: Probe, name: str, after: float, timeout: float) -> float:
    """Seconds from `after` until `name` answers on the IPv6 VIP; the client's entry then points at it."""
    took = probe6.wait_for(name, timeout=timeout, after=after) - after
    assert lab.client_neigh(lab.vip6) == lab.hosts[name].mac
    return took


@pytest.mark.parametrize("mixed6", ["ucast6", "mcast6"], indirect=True)
def test_heartbeat_primary_agent_backup(mixed6: tuple[MixedPair, Probe]) -> None:
    pair, probe6 = mixed6
    lab = pair.lab
    t0 = time.monotonic()
    a2 = pair.agent("server2")          # first: see the module docstring
    hb1 = pair.heartbeat("server1")
    t_hb = time.monotonic()
    _moved_to(lab, probe6, "server1", t0, timeout=25)
    formed(hb1, a2, "server2")
    served = len(probe6.snapshot().holders())
    assert [(p["interface"], p["up"]) for p in a2.status()["paths"]] == [("eth0", True)]
    assert not has_vip6(lab, "server2")
    medium = "mcast6" if "mcast6" in lab.hosts["server1"].read("/etc/ha.d/ha.cf") else "ucast6"
    started = {"mcast6": "UDP multicast heartbeat started for [ff12::1:2:3:4]:694 on interface eth0 (hops=1 loop=0)",
               "ucast6": f"ucast6: heartbeat started for [{lab.hosts['server2'].address6}]:694 on interface eth0"}
    assert started[medium] in hb1.ha_log() and hb1.bad_lines("server2") == []

    # power loss of the Heartbeat primary: the agent takes the IPv6 VIP, the client follows its NA burst
    time.sleep(max(0.0, t_hb + HB_SETTLE - time.monotonic()))
    n = len(calls(lab))
    t = time.monotonic()
    hb1.power_loss()
    took = _moved_to(lab, probe6, "server2", t, timeout=DEADTIME + 5)
    assert took <= DEADTIME + 1
    assert "event=resource.call name=IPv6addr action=start rc=0" in a2.ha_log()
    wait_until(lambda: len(calls(lab)) - n >= 2, 5, "takeover calls")

    # Heartbeat returns: failback, its own IPv6addr agent takes the VIP and moves the client's entry home
    lab.hosts["server1"].power_on()
    t = time.monotonic()
    hb1.start()
    back = _moved_to(lab, probe6, "server1", t, timeout=20)
    wait_until(lambda: not has_vip6(lab, "server2"), 5, "the agent to drop the IPv6 VIP")
    formed(hb1, a2, "server2")
    assert probe6.snapshot().holders()[served - 1:] == ["server1", "server2", "server1"]
    print(f"\nheartbeat primary over {medium}: agent serves {took:.2f} s after power loss; "
          f"failback {back:.2f} s after heartbeat restarts")


def test_agent_primary_heartbeat_backup_over_ucast6(mixed6: tuple[MixedPair, Probe]) -> None:
    pair, probe6 = mixed6
    lab = pair.lab
    a1 = pair.agent("server1")
    t0 = time.monotonic()
    _moved_to(lab, probe6, "server1", t0, timeout=20)
    hb2 = pair.heartbeat("server2")
    t_hb = time.monotonic()
    formed(hb2, a1, "server1")
    assert not has_vip6(lab, "server2")

    # power loss of the agent primary: Heartbeat's IPv6addr takes the VIP and advertises it
    time.sleep(max(0.0, t_hb + HB_SETTLE - time.monotonic()))
    t = time.monotonic()
    lab.hosts["server1"].power_loss([a1.proc])
    wait_until(lambda: hb2.nodestatus("server1") == "dead", DEADTIME + 3, "heartbeat to see server1 dead")
    detected = time.monotonic() - t
    took = _moved_to(lab, probe6, "server2", t, timeout=DEADTIME + 8)
    assert detected <= DEADTIME + 1
    assert took <= DEADTIME + 4
    assert has_vip6(lab, "server2")
    # IPv6addr's start goes on for ~5 s after the address is up (one advertisement a second); a node that
    # returns before it ends makes Heartbeat kill its own start ("Unknown error: 137", "Both machines own
    # foreign resources!"). A rebooting machine is slower than that; wait for the takeover to end.
    wait_until(lambda: "mach_down takeover complete for node server1" in hb2.ha_log(), 15,
               "Heartbeat's takeover to complete")

    # the agent returns: Heartbeat releases, the agent takes the VIP and moves the client's entry home
    lab.hosts["server1"].power_on()
    t = time.monotonic()
    a1 = pair.agent("server1")
    back = _moved_to(lab, probe6, "server1", t, timeout=20)
    wait_until(lambda: not has_vip6(lab, "server2"), 5, "heartbeat to drop the IPv6 VIP")
    formed(hb2, a1, "server1")
    assert probe6.snapshot().holders() == ["server1", "server2", "server1"]
    assert hb2.bad_lines("server1") == []
    print(f"\nagent primary over ucast6: heartbeat sees it dead after {detected:.2f} s, serves after "
          f"{took:.2f} s; failback {back:.2f} s after the agent restarts")
