"""check-config's host checks with a fake host: each finding names the file:line an operator edits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hbvip.config import Config, load_config
from hbvip.lint import (
    HostView, Link, check_node_names, check_scripts, check_timers, check_vips, check_vips_unclaimed,
)
from hbvip.net.garp import arp_probe
from hbvip.net.ifaddr import IfAddr
from hbvip.net.ndisc import neighbour_probe

HOSTS = {"server1": ["10.99.0.1"], "server2": ["10.99.0.2"]}


def host(*addrs: tuple[str, str, int], links: dict[str, Link] | None = None) -> HostView:
    links = links or {"lo": Link("lo", True, True, ""), "eth0": Link("eth0", True, True, "02:99:00:00:00:01")}
    return HostView(links, tuple(IfAddr(i, 2, a, p, i, None) for i, a, p in addrs))


SERVER1 = host(("lo", "127.0.0.1", 8), ("eth0", "10.99.0.1", 24))


def load(d: Path, haresources: str | None = None, hacf: dict[str, str] | None = None) -> Config:
    if haresources is not None:
        (d / "haresources").write_text(haresources)
    if hacf:
        lines = (d / "ha.cf").read_text().splitlines()
        out = [next((f"{k} {v}" for k, v in hacf.items() if line.split()[:1] == [k]), line) for line in lines]
        (d / "ha.cf").write_text("\n".join(out) + "\n")
    return load_config(d, "server1", init_dir=d / "no-init.d")


def where(problems: list) -> list[tuple[str, int | None, str]]:
    return [(Path(p.path).name, p.line, p.severity) for p in problems]


# -- VIP placement --------------------------------------------------------------------------------

def test_seed_vip_fits_eth0(config_dir: Path) -> None:
    assert check_vips(load(config_dir), SERVER1) == []


def test_vip_outside_the_named_interfaces_subnet_is_an_error_at_its_line(config_dir: Path) -> None:
    cfg = load(config_dir, "# pair\nserver1 IPaddr::10.99.0.100/24/eth0\nserver1 IPaddr::10.98.5.7/24/eth0 failback.sh\n")
    problems = check_vips(cfg, SERVER1)
    assert where(problems) == [("haresources", 3, "error")]
    assert "10.98.5.7 is outside every subnet on eth0 (10.99.0.1/24)" in problems[0].message


def test_vip_without_interface_needs_exactly_one_matching_subnet(config_dir: Path) -> None:
    cfg = load(config_dir, "server1 10.99.0.100\n")
    assert check_vips(cfg, SERVER1) == []
    two = host(("eth0", "10.99.0.1", 24), ("eth1", "10.99.0.9", 16),
               links={"eth0": Link("eth0", True, True, "m"), "eth1": Link("eth1", True, True, "n")})
    problems = check_vips(cfg, two)
    assert where(problems) == [("haresources", 1, "error")] and "several interfaces (eth0, eth1)" in problems[0].message
    problems = check_vips(load(config_dir, "server1 10.50.0.100\n"), SERVER1)
    assert "outside every interface's subnet" in problems[0].message


def test_missing_down_and_carrierless_interfaces(config_dir: Path) -> None:
    cfg = load(config_dir, "server1 IPaddr::10.99.0.100/24/eth7\n")
    assert "interface eth7 does not exist" in check_vips(cfg, SERVER1)[0].message
    cfg = load(config_dir, "server1 IPaddr::10.99.0.100/24/eth0\n")
    down = host(("eth0", "10.99.0.1", 24), links={"eth0": Link("eth0", False, False, "m")})
    assert [(p.severity, "is down" in p.message) for p in check_vips(cfg, down)] == [("error", True)]
    no_carrier = host(("eth0", "10.99.0.1", 24), links={"eth0": Link("eth0", True, False, "m")})
    assert [(p.severity, "no carrier" in p.message) for p in check_vips(cfg, no_carrier)] == [("warning", True)]


def test_the_held_vip_itself_does_not_count_as_its_subnet(config_dir: Path) -> None:
    """A node holding 10.99.5.100/24 on eth0 must still be told eth0 has no 10.99.5.0/24 of its own."""
    cfg = load(config_dir, "server1 IPaddr::10.99.5.100/24/eth0\n")
    holding = host(("eth0", "10.99.0.1", 24), ("eth0", "10.99.5.100", 24))
    assert where(check_vips(cfg, holding)) == [("haresources", 1, "error")]


def test_prefix_other_than_the_subnets_is_a_warning(config_dir: Path) -> None:
    problems = check_vips(load(config_dir, "server1 IPaddr::10.99.0.100/25/eth0\n"), SERVER1)
    assert where(problems) == [("haresources", 1, "warning")]


# -- node names -----------------------------------------------------------------------------------

def test_node_names_resolving_to_fixed_addresses_pass(config_dir: Path) -> None:
    assert check_node_names(load(config_dir), SERVER1, HOSTS.get) == []


def test_node_name_resolving_to_the_vip_is_an_error_at_its_ucast_line(config_dir: Path) -> None:
    problems = check_node_names(load(config_dir), SERVER1, {**HOSTS, "server2": ["10.99.0.100"]}.get)
    assert where(problems) == [("ha.cf", 5, "error")]
    assert "server2 resolves to 10.99.0.100, a virtual IP" in problems[0].message


def test_unresolvable_ucast_peer_is_an_error_and_peer_on_this_host_too(config_dir: Path) -> None:
    cfg = load(config_dir)
    problems = check_node_names(cfg, SERVER1, lambda n: HOSTS[n] if n == "server1" else [])
    assert where(problems) == [("ha.cf", 5, "error")] and "does not resolve" in problems[0].message
    problems = check_node_names(cfg, SERVER1, lambda n: ["10.99.0.1"])
    assert [p.message.split(":")[0] for p in problems] == ["peer name server2 resolves to 10.99.0.1, an address of this host"]


def test_own_name_on_a_foreign_address_is_a_warning(config_dir: Path) -> None:
    problems = check_node_names(load(config_dir), SERVER1, {"server1": ["10.99.0.50"], "server2": ["10.99.0.2"]}.get)
    assert where(problems) == [("ha.cf", 4, "warning")]


# -- timers ---------------------------------------------------------------------------------------

def test_seed_timers_are_sane(config_dir: Path) -> None:
    assert check_timers(load(config_dir)) == []


def test_deadtime_close_to_keepalive_and_short_initdead_warn_at_their_lines(config_dir: Path) -> None:
    cfg = load(config_dir, hacf={"deadtime": "2.5", "warntime": "2", "initdead": "12"})
    assert where(check_timers(cfg)) == [("ha.cf", 8, "warning")]
    cfg = load(config_dir, hacf={"deadtime": "5", "warntime": "3", "initdead": "6"})
    problems = check_timers(cfg)
    assert where(problems) == [("ha.cf", 9, "warning")] and "initdead 6s is less than twice deadtime 5s" in problems[0].message


# -- resource scripts -----------------------------------------------------------------------------

def script(d: Path, body: str) -> None:
    (d / "resource.d" / "failback.sh").write_text("#!/bin/sh\n" + body)


def test_script_answering_status_passes_and_hanging_one_is_an_error(config_dir: Path) -> None:
    cfg = load(config_dir)
    assert asyncio.run(check_scripts(cfg, config_dir / "no-init.d")) == []
    script(config_dir, "sleep 30\n")
    problems = asyncio.run(check_scripts(cfg, config_dir / "no-init.d", timeout=0.3))
    assert where(problems) == [("haresources", 1, "error")] and "did not answer within 0.3s" in problems[0].message


def test_script_that_cannot_run_is_an_error_and_failing_status_a_warning(config_dir: Path) -> None:
    cfg = load(config_dir)
    (config_dir / "resource.d" / "failback.sh").write_text("no shebang, not a program\x00")
    assert where(asyncio.run(check_scripts(cfg, config_dir / "no-init.d"))) == [("haresources", 1, "error")]
    script(config_dir, "echo 'broken: cannot read /etc/x' >&2; exit 1\n")
    problems = asyncio.run(check_scripts(cfg, config_dir / "no-init.d"))
    assert where(problems) == [("haresources", 1, "warning")] and "exited 1: broken: cannot read" in problems[0].message
    script(config_dir, "echo stopped; exit 3\n")     # LSB "not running" is an answer, not a failure
    assert asyncio.run(check_scripts(cfg, config_dir / "no-init.d")) == []


def test_status_is_really_called_with_the_resource_arguments(config_dir: Path, tmp_path: Path) -> None:
    seen = tmp_path / "args"
    script(config_dir, f'echo "$@" > {seen}\n')
    cfg = load(config_dir, "server1 IPaddr::10.99.0.100/24/eth0 failback.sh::db::7\n")
    assert asyncio.run(check_scripts(cfg, config_dir / "no-init.d")) == []
    assert seen.read_text() == "db 7 status\n"


# -- ARP probe ------------------------------------------------------------------------------------

def unclaimed(cfg: Config, view: HostView, answers: dict[str, set[str]], tmp_path: Path):
    asked: list[str] = []

    def probe(iface: str, ip: str) -> set[str]:
        asked.append(ip)
        return answers.get(ip, set())

    report = asyncio.run(check_vips_unclaimed(cfg, view, tmp_path / "no-agent", probe, HOSTS.get))
    return report, asked


def test_vip_answered_by_another_machine_is_an_error(config_dir: Path, tmp_path: Path) -> None:
    report, asked = unclaimed(load(config_dir), SERVER1, {"10.99.0.100": {"02:aa:00:00:00:09"},
                                                          "10.99.0.2": {"02:99:00:00:00:02"}}, tmp_path)
    assert where(report.problems) == [("haresources", 1, "error")]
    assert "02:aa:00:00:00:09" in report.problems[0].message
    assert asked == ["10.99.0.100", "10.99.0.2"]


def test_vip_answered_by_the_peer_is_the_pair_holding_it(config_dir: Path, tmp_path: Path) -> None:
    answers = {"10.99.0.100": {"02:99:00:00:00:02"}, "10.99.0.2": {"02:99:00:00:00:02"}}
    report, _unused = unclaimed(load(config_dir), SERVER1, answers, tmp_path)
    assert report.problems == [] and "only the peer (02:99:00:00:00:02)" in report.notes[0]


def test_probe_skipped_when_this_node_holds_the_vip(config_dir: Path, tmp_path: Path) -> None:
    holding = host(("eth0", "10.99.0.1", 24), ("eth0", "10.99.0.100", 24))
    report, asked = unclaimed(load(config_dir), holding, {"10.99.0.100": {"x"}}, tmp_path)
    assert asked == [] and report.problems == [] and "this node holds it" in report.notes[0]


def test_arp_probe_needs_root_or_a_real_interface() -> None:
    """Without CAP_NET_RAW or without the interface the probe raises instead of saying 'free'."""
    with pytest.raises(OSError):
        arp_probe("hbvip-no-such-if0", "10.99.0.100", count=1, wait=0)


# -- IPv6 VIPs ------------------------------------------------------------------------------------

DUAL = host(("lo", "127.0.0.1", 8), ("eth0", "10.99.0.1", 24), ("eth0", "fd99::1", 64), ("eth0", "fe80::99:1", 64))


def test_ipv6_vip_is_checked_against_the_interfaces_ipv6_networks(config_dir: Path) -> None:
    cfg = load(config_dir, "server1 IPaddr::10.99.0.100/24/eth0 IPv6addr::fd99::100/64/eth0\n"
                           "server1 IPv6addr::fd98::7/64/eth0\nserver1 IPv6addr::fd99::101\n")
    problems = check_vips(cfg, DUAL)
    assert where(problems) == [("haresources", 2, "error")]
    assert "fd98::7 is outside every subnet on eth0 (fd99::1/64, fe80::99:1/64)" in problems[0].message
    v4_only = check_vips(cfg, SERVER1)  # no IPv6 network on eth0 at all
    assert "fd99::100 is outside every subnet on eth0 (no IPv6 address)" in v4_only[0].message


def test_ipv6_vip_is_asked_for_by_neighbour_solicitation_not_arp(config_dir: Path, tmp_path: Path) -> None:
    cfg = load(config_dir, "server1 IPv6addr::fd99::100/64/eth0\n")
    solicited: list[str] = []

    def probe6(iface: str, ip: str) -> set[str]:
        solicited.append(ip)
        return {"02:aa:00:00:00:09"}

    report = asyncio.run(check_vips_unclaimed(cfg, DUAL, tmp_path / "no-agent", lambda i, a: set(), HOSTS.get, probe6))
    assert solicited == ["fd99::100"]
    assert where(report.problems) == [("haresources", 1, "error")]
    assert "fd99::100 is already answered on eth0 by another machine (MAC 02:aa:00:00:00:09)" in report.problems[0].message


def test_neighbour_probe_needs_root_or_a_real_interface() -> None:
    with pytest.raises(OSError):
        neighbour_probe("hbvip-no-such-if0", "fd99::100", count=1, wait=0)
