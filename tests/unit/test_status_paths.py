"""`hbvip status` names each heartbeat path by its media lines (`link   mcast6 eth0 [ff12::1]:694`),
whatever the media: a pair that only uses multicast is not shown as "ucast to -"."""

from __future__ import annotations

from types import SimpleNamespace

from hbvip.cluster.paths import PathWatch, media_interfaces
from hbvip.config import parse_hacf
from hbvip.status import _media, _paths
from hbvip.status_table import render_status
from status_samples import status


def media_of(hacf_lines: str, peer_addresses: list[str], node: str = "server1") -> dict[str, list[str]]:
    hacf, problems = parse_hacf("node server1 server2\n" + hacf_lines, "ha.cf")
    assert hacf is not None, problems
    return _media(SimpleNamespace(hacf=hacf, node_name=node), peer_addresses)  # type: ignore[arg-type]


def test_multicast_only_paths_are_named_by_group_and_port() -> None:
    media = media_of("udpport 5405\nmcast eth0 239.99.0.1 694 1 0\nmcast6 eth1 ff12::1 5406 1 0\n"
                     "mcast eth0 239.99.0.2\nbcast eth2\n", [])
    assert media == {"eth0": ["mcast eth0 239.99.0.1:694", "mcast eth0 239.99.0.2:5405"],   # no port: udpport
                     "eth1": ["mcast6 eth1 [ff12::1]:5406"], "eth2": ["bcast eth2"]}


def test_a_shared_hacf_shows_the_peers_ucast_addresses_not_our_own() -> None:
    lines = "ucast eth0 10.99.0.1\nucast eth0 10.99.0.2\nucast6 eth1 fd99:1::1\nucast6 eth1 fd99:1:0:0:0:0:0:2\n"
    assert media_of(lines, ["10.99.0.2", "fd99:1::2"]) == {
        "eth0": ["ucast eth0 10.99.0.2"], "eth1": ["ucast6 eth1 fd99:1::2"]}
    # host names: the transport resolved them; our own node name is the one dropped
    assert media_of("ucast eth0 server1\nucast eth0 Server2\n", ["10.99.0.2"]) == {"eth0": ["ucast eth0 Server2"]}


def test_status_paths_carry_their_media_and_the_table_prints_them() -> None:
    hacf, _problems = parse_hacf("node server1 server2\nmcast6 eth0 ff12::1 694 1 0\nmcast eth1 239.99.0.1 694 1 0\n",
                                 "ha.cf")
    assert hacf is not None
    watch = PathWatch("server2", media_interfaces(hacf.media), 5.0)
    watch.heard("eth0", 100.0)
    paths = _paths(watch, 100.5, _media(SimpleNamespace(hacf=hacf, node_name="server1"), []))  # type: ignore[arg-type]
    assert [(p["interface"], p["up"], p["media"]) for p in paths] == [
        ("eth0", True, ["mcast6 eth0 [ff12::1]:694"]), ("eth1", False, ["mcast eth1 239.99.0.1:694"])]
    st = status(paths=paths)
    st["peer"]["addresses"] = []
    lines = render_status(st, now=200.0).splitlines()
    assert lines[2:6] == ["link   mcast6 eth0 [ff12::1]:694", "link   mcast eth1 239.99.0.1:694",
                          "path   server2:eth0         up       heard 0.5s ago   datagrams 1",
                          "path   server2:eth1         dead     never heard   datagrams 0"]
    assert not any("ucast" in line for line in lines)


def test_a_status_without_media_still_shows_the_ucast_addresses() -> None:
    """An agent from before per-path media answers a newer `hbvip status`: the old line, not nothing."""
    st = status(paths=[{"peer": "server2", "interface": "eth0", "up": True, "last_heard_s": 0.2, "datagrams": 4}])
    assert render_status(st, now=200.0).splitlines()[2] == "link   ucast to 10.99.0.2"
