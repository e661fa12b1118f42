"""`ping` / `deadping` in ha.cf, `garp_refresh` in hbvip.cf, and what check-config says about them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hbvip.config import Config, load_config
from hbvip.config.hacf import parse_hacf
from hbvip.lint import check_ping_nodes, check_timers


def with_lines(d: Path, *lines: str, hbvip_cf: str | None = None) -> Config:
    (d / "ha.cf").write_text((d / "ha.cf").read_text() + "".join(f"{line}\n" for line in lines))
    if hbvip_cf is not None:
        (d / "hbvip.cf").write_text(hbvip_cf)
    return load_config(d, "server1", init_dir=d / "no-init.d")


def test_deadping_defaults_to_deadtime_and_takes_seconds_or_ms(config_dir: Path) -> None:
    cfg = with_lines(config_dir, "ping 10.99.0.254")
    assert cfg.hacf.ping == ("10.99.0.254",)
    assert cfg.hacf.timers.deadping == cfg.hacf.timers.deadtime
    hacf, problems = parse_hacf((config_dir / "ha.cf").read_text() + "deadping 2500ms\n", "ha.cf")
    assert hacf is not None and hacf.timers.deadping == 2.5
    assert not [p for p in problems if "deadping" in p.message]     # no longer "a directive hbvip ignores"


def test_deadping_must_be_a_positive_time(config_dir: Path) -> None:
    hacf, problems = parse_hacf((config_dir / "ha.cf").read_text() + "deadping soon\n", "ha.cf")
    assert hacf is None and any("deadping value 'soon' is not a time" in p.message for p in problems)


def test_deadping_shorter_than_two_keepalives_is_a_warning_at_its_line(config_dir: Path) -> None:
    keepalive = load_config(config_dir, "server1", init_dir=config_dir / "no-init.d").hacf.timers.keepalive
    cfg = with_lines(config_dir, "ping 10.99.0.254", f"deadping {keepalive * 1.5:g}")
    found = [p for p in check_timers(cfg) if "deadping" in p.message]
    assert len(found) == 1 and found[0].severity == "warning"
    assert found[0].line == len((config_dir / "ha.cf").read_text().splitlines())


def test_short_deadping_without_ping_nodes_is_not_reported(config_dir: Path) -> None:
    cfg = with_lines(config_dir, "deadping 0.1")
    assert not [p for p in check_timers(cfg) if "deadping" in p.message]


def test_silent_ping_node_is_a_warning_and_all_silent_says_nothing_would_be_held(config_dir: Path) -> None:
    cfg = with_lines(config_dir, "ping 10.99.0.254 10.99.0.253")

    async def only_254(address: str) -> bool:
        return address == "10.99.0.254"

    async def none(address: str) -> bool:
        return False

    one = asyncio.run(check_ping_nodes(cfg, probe=only_254))
    assert [p.message for p in one] == ["ping node 10.99.0.253 does not answer ICMP echo"]
    assert one[0].severity == "warning" and one[0].line == len((config_dir / "ha.cf").read_text().splitlines())
    both = asyncio.run(check_ping_nodes(cfg, probe=none))
    assert len(both) == 1 and "would hold no resources" in both[0].message


def test_no_ping_lines_no_probe(config_dir: Path) -> None:
    async def explode(address: str) -> bool:
        raise AssertionError("probed without ping lines")

    assert asyncio.run(check_ping_nodes(with_lines(config_dir), probe=explode)) == []


def test_garp_refresh_is_seconds_zero_off(config_dir: Path) -> None:
    assert with_lines(config_dir, hbvip_cf="").ext.garp_refresh == 0
    assert with_lines(config_dir, hbvip_cf="garp_refresh 1500ms\n").ext.garp_refresh == 1.5
