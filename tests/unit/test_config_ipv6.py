"""IPv6 in the config files: VIPs in haresources, read as Heartbeat's IPv6addr wrapper splits its argument
(`ipv6[/prefix[/nic]]`) and as Pacemaker's IPaddr2 takes an IPv6 address, and `ucast6` heartbeat paths
in ha.cf, read as Heartbeat's ucast6 plugin reads them, and `mcast6` groups as its mcast6 plugin does; every
mistake says the fix."""

from __future__ import annotations

import pytest

from hbvip.config import parse_hacf, parse_haresources
from hbvip.config.problems import errors


def test_ipv6addr_and_ipaddr2_forms_beside_ipv4() -> None:
    groups, problems = parse_haresources(
        "server1 10.99.0.10 IPv6addr::2001:db8::100/64/eth0 IPv6addr::2001:db8:0:0:0:0:0:101/64 "
        "IPaddr2::fd99:1::102/64/eth1 IPv6addr::fd99:1::103 failback.sh\n", "haresources")
    assert errors(problems) == []   # the `::` forms are warned about (below), and read whole
    r = groups[0].resources
    assert (r[1].name, r[1].args) == ("IPv6addr", ("2001:db8::100/64/eth0",))
    assert [(x.vip.address, x.vip.prefix, x.vip.interface, x.vip.broadcast, x.vip.version) for x in r[1:5]] == [
        ("2001:db8::100", 64, "eth0", None, 6),
        ("2001:db8::101", 64, None, None, 6),       # written out in full (what real Heartbeat needs): same VIP
        ("fd99:1::102", 64, "eth1", None, 6),
        ("fd99:1::103", None, None, None, 6),       # prefix from the interface's IPv6 network, like IPaddr
    ]
    assert r[0].vip.version == 4 and r[5].vip is None and groups[0].key == "10.99.0.10"


def test_one_vip_in_two_spellings_is_used_twice() -> None:
    _unused, problems = parse_haresources("server1 IPv6addr::2001:db8::100\nserver2 IPv6addr::2001:db8:0:0::100/64\n",
                                          "haresources")
    assert ["2001:db8::100 is already used on line 1" in p.message for p in errors(problems)] == [True]


@pytest.mark.parametrize("spec, pieces, full", [
    ("IPv6addr::fd99:6::100/64/eth0", "IPv6addr fd99:6 100/64/eth0 start", "IPv6addr::fd99:6:0:0:0:0:0:100/64/eth0"),
    ("IPaddr2::2001:db8::1", "IPaddr2 2001:db8 1 start", "IPaddr2::2001:db8:0:0:0:0:0:1"),
    ("IPv6addr::fd99::/64", "IPv6addr fd99 /64 start", "IPv6addr::fd99:0:0:0:0:0:0:0/64"),
    ("IPv6addr::FD99:0:0:7::A/64/eth1", "IPv6addr FD99:0:0:7 A/64/eth1 start", "IPv6addr::fd99:0:0:7:0:0:0:a/64/eth1"),
])
def test_an_ipv6_vip_with_double_colon_warns_what_heartbeat_would_run_and_the_full_form(
        spec: str, pieces: str, full: str) -> None:
    """Heartbeat 3.0.6's ResourceManager splits every `::`; hbvip reads the VIP whole, so it only warns."""
    groups, problems = parse_haresources(f"# shared with a Heartbeat node\nserver1 {spec} failback.sh\n",
                                         "/etc/ha.d/haresources")
    assert len(groups) == 1 and groups[0].resources[0].vip is not None
    assert [(p.path, p.line, p.severity) for p in problems] == [("/etc/ha.d/haresources", 2, "warning")]
    assert f"would run '{pieces}'" in problems[0].message
    assert problems[0].fix == f"if a Heartbeat node shares this file, write {full}"
    assert str(problems[0]).startswith("/etc/ha.d/haresources:2: warning: resource ")


def test_full_ipv6_vips_and_ipv4_vips_warn_about_nothing() -> None:
    _groups, problems = parse_haresources("server1 IPv6addr::fd99:6:0:0:0:0:0:100/64/eth0 IPaddr2::10.0.0.1/24 "
                                          "IPaddr::10.0.0.2 IPaddr2::fd99:6:0:0:0:0:0:101\n", "haresources")
    assert problems == []


@pytest.mark.parametrize("spec, message, fix", [
    ("IPaddr::fd99::1/64", "IPaddr is IPv4 only", "IPv6addr::fd99::1/64"),
    ("IPv6addr::10.0.0.1/24", "IPv6addr is IPv6 only", "IPaddr::10.0.0.1/24"),
    ("fd99::1/64", "a bare IPv6 address is not a resource", "IPv6addr::fd99::1/64"),
    ("IPv6addr::fe80::1/64/eth0", "cannot be a virtual IP", "global or unique-local"),
    ("IPv6addr::ff02::1", "cannot be a virtual IP", "unicast"),
    ("IPv6addr::fd99::1/129", "prefix /129 is out of range 1-128", "1-128"),
    ("IPv6addr::fd99::1/64/eth0/x", "too many '/' fields", "ipv6[/prefix[/interface]]"),
    ("IPv6addr::fd99::zz/64", "is not a valid IPv6 address", "IPv6addr::2001:db8::100/64/eth0"),
    ("IPv6addr::fd99::1/64/eth0/", "too many '/' fields", "ipv6[/prefix[/interface]]"),
    ("IPv6addr::fd99::1/64/e!h0", "not a valid interface name", "ipv6[/prefix[/interface]]"),
])
def test_bad_ipv6_vips_name_the_line_and_the_fix(spec: str, message: str, fix: str) -> None:
    groups, problems = parse_haresources(f"# x\nserver1 {spec} failback.sh\n", "haresources")
    assert groups == ()
    assert [(p.line, message in p.message, fix in p.fix) for p in problems] == [(2, True, True)]


# -- ucast6 ---------------------------------------------------------------------------------------

IPV6_ONLY = "node server1 server2\nauto_failback on\nucast6 eth0 fd99:7::1\nucast6 eth1 fe80::2%eth1\n"


def test_ucast6_lines_are_paths_like_ucast() -> None:
    parsed, problems = parse_hacf(IPV6_ONLY + "ucast6 eth0 2001:DB8:0:0:0:0:0:2\n", "ha.cf")
    assert parsed is not None, problems
    assert [(m.kind, m.interface, m.address, m.line) for m in parsed.media] == [
        ("ucast6", "eth0", "fd99:7::1", 3), ("ucast6", "eth1", "fe80::2", 4), ("ucast6", "eth0", "2001:db8::2", 5)]


@pytest.mark.parametrize("line, message", [
    ("ucast6 eth0", "takes an interface and one peer address, got 1"),
    ("ucast6 eth0 fd99::1 fd99::2", "takes an interface and one peer address, got 3"),
    ("ucast6 eth0 server2", "is not a unicast IPv6 address (Heartbeat's ucast6 takes no host names)"),
    ("ucast6 eth0 10.99.0.2", "is not a unicast IPv6 address"),
    ("ucast6 eth0 ff02::1", "is not a unicast IPv6 address"),
    ("ucast6 eth0 ::1", "is not a unicast IPv6 address"),
    ("ucast6 e/th0 fd99::2", "is not a valid interface name"),
    ("ucast6 eth0 fe80::2%eth1", "scope eth1 is not the line's interface eth0"),
])
def test_bad_ucast6_lines_name_the_line_and_the_fix(line: str, message: str) -> None:
    parsed, problems = parse_hacf(f"node server1 server2\nauto_failback on\nucast eth0 server2\n{line}\n", "ha.cf")
    assert parsed is None
    assert [(p.line, message in p.message) for p in problems if p.is_error] == [(4, True)]


def test_ping6_nodes_join_the_ping_nodes() -> None:
    parsed, problems = parse_hacf(IPV6_ONLY + "ping 10.99.0.254\nping6 fd99:7::fe 2001:DB8::1\n", "ha.cf")
    assert parsed is not None, problems
    assert parsed.ping == ("10.99.0.254", "fd99:7::fe", "2001:db8::1")


@pytest.mark.parametrize("line, message", [
    ("ping6", "ping6 needs at least one address"),
    ("ping6 router1", "is not a global or unique-local IPv6 address"),
    ("ping6 fe80::1", "is not a global or unique-local IPv6 address"),
    ("ping6 ff02::2", "is not a global or unique-local IPv6 address"),
])
def test_bad_ping6_lines(line: str, message: str) -> None:
    parsed, problems = parse_hacf(f"{IPV6_ONLY}{line}\n", "ha.cf")
    assert parsed is None
    assert [(p.line, message in p.message) for p in problems if p.is_error] == [(5, True)]


# -- mcast6 ---------------------------------------------------------------------------------------

def test_mcast6_lines_are_paths_with_their_own_port_hops_and_loop() -> None:
    parsed, problems = parse_hacf("node server1 server2\nauto_failback on\nmcast6 eth0 ff12::1:2:3:4 694 1 0\n"
                                  "mcast6 eth1 FF05::1:5 6940 4 1\n", "ha.cf")
    assert parsed is not None, problems
    assert problems == []       # no longer "a Heartbeat directive hbvip ignores"
    assert [(m.kind, m.interface, m.address, m.port, m.ttl, m.loop) for m in parsed.media] == [
        ("mcast6", "eth0", "ff12::1:2:3:4", 694, 1, 0), ("mcast6", "eth1", "ff05::1:5", 6940, 4, 1)]


@pytest.mark.parametrize("line, message", [
    ("mcast6 eth0 ff12::1:2:3:4 694 1", "takes 5 values (interface, group, port, hops, loop), got 4"),
    ("mcast6 eth0", "takes 5 values"),
    ("mcast6 e/th0 ff12::1 694 1 0", "is not a valid interface name"),
    ("mcast6 eth0 fd99::1 694 1 0", "is not a link-, admin-, site- or organization-local IPv6 multicast group"),
    ("mcast6 eth0 ff0e::1 694 1 0", "multicast group"),        # global scope: heartbeats shall not be global
    ("mcast6 eth0 ff01::1 694 1 0", "multicast group"),        # interface-local: useless for heartbeats
    ("mcast6 eth0 ff32::1 694 1 0", "multicast group"),        # a flag other than "transient"
    ("mcast6 eth0 ff02:: 694 1 0", "multicast group"),         # all zero after the scope: reserved
    ("mcast6 eth0 239.0.0.1 694 1 0", "multicast group"),
    ("mcast6 eth0 ff12::1 ha 1 0", "port 'ha' is out of range 1-65535"),
    ("mcast6 eth0 ff12::1 694 5 0", "hops '5' is out of range 0-4"),
    ("mcast6 eth0 ff12::1 694 1 2", "loop '2' is out of range 0-1"),
])
def test_bad_mcast6_lines_name_the_line_and_the_fix(line: str, message: str) -> None:
    parsed, problems = parse_hacf(f"node server1 server2\nauto_failback on\nucast eth0 server2\n{line}\n", "ha.cf")
    assert parsed is None
    assert [(p.line, message in p.message, "mcast6 eth0 ff12::1:2:3:4 694 1 0" in p.fix)
            for p in problems if p.is_error] == [(4, True, "interface name" not in message)]
