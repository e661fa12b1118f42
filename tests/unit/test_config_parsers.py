"""The grammars, one rule at a time: ha.cf, haresources, authkeys, hbvip.cf, time values."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hbvip.config import (
    ConfigError,
    load_config,
    parse_authkeys,
    parse_extensions,
    parse_haresources,
    parse_hacf,
    parse_time,
)

SEED = Path(__file__).resolve().parents[1] / "data" / "config" / "good" / "seed"
BASE = "node server1 server2\nucast eth0 server2\nauto_failback on\n"


def hacf(extra: str = "", base: str = BASE):
    return parse_hacf(base + extra, "ha.cf")


def messages(problems) -> list[str]:
    return [str(p) for p in problems]


# -- time values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("1", 1.0), ("0.5", 0.5), ("200ms", 0.2), ("1500ms", 1.5),
                                           ("2s", 2.0), (".5", 0.5), ("10", 10.0), ("250msec", 0.25)])
def test_parse_time_reads_heartbeat_time_values(text: str, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "fast", "-1", "1m", "1.2.3", "nan", "inf", "1 s", "ms"])
def test_parse_time_refuses_junk(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


# -- ha.cf ---------------------------------------------------------------------------------------

def test_heartbeat_defaults_apply_when_timers_are_absent() -> None:
    parsed, problems = hacf()
    assert parsed is not None, messages(problems)
    t = parsed.timers
    assert (t.keepalive, t.deadtime, t.warntime, t.initdead) == (1.0, 30.0, 15.0, 30.0)
    assert parsed.udpport == 694 and parsed.uuidfrom == "file" and parsed.crm == "no"
    assert parsed.use_logd is False and parsed.debug == 0 and parsed.autojoin == "none"


@pytest.mark.parametrize("deadtime, initdead", [("5", 12.0), ("8", 16.0), ("20", 20.0)])
def test_initdead_default_follows_heartbeat(deadtime: str, initdead: float) -> None:
    parsed, problems = hacf(f"deadtime {deadtime}\nwarntime 2\n")
    assert parsed is not None, messages(problems)
    assert parsed.timers.initdead == initdead


def test_fast_timers_in_milliseconds() -> None:
    parsed, problems = hacf("keepalive 200ms\nwarntime 500ms\ndeadtime 1\ninitdead 2\n")
    assert parsed is not None
    assert (parsed.timers.keepalive, parsed.timers.warntime, parsed.timers.deadtime, parsed.timers.initdead) == (0.2, 0.5, 1.0, 2.0)
    assert ["initdead 2s may be too small" in m for m in messages(problems)] == [True]
    assert problems[0].severity == "warning" and problems[0].line == 7


def test_deadtime_equal_to_twice_keepalive_is_refused() -> None:
    parsed, problems = hacf("keepalive 2\ndeadtime 4\ninitdead 10\nwarntime 3\n")
    assert parsed is None
    assert [(p.line, p.severity) for p in problems] == [(5, "error")]
    assert "deadtime 4s must be more than twice keepalive 2s" in problems[0].message


def test_warntime_not_above_keepalive_is_a_warning() -> None:
    parsed, problems = hacf("keepalive 1\nwarntime 1\ndeadtime 5\ninitdead 10\n")
    assert parsed is not None
    assert [(p.line, p.severity) for p in problems] == [(5, "warning")]


def test_nodes_may_repeat_and_share_lines() -> None:
    parsed, _unused = parse_hacf("node server1\nnode server2\nucast eth0 server2\nauto_failback off\n", "ha.cf")
    assert parsed is not None and parsed.nodes == ("server1", "server2") and parsed.auto_failback == "off"


def test_media_of_every_kind() -> None:
    parsed, problems = hacf("ucast eth1 10.99.0.2 10.99.0.1\nbcast eth2 eth3\nmcast eth0 239.0.0.1 694 2 0\n"
                            "mcast eth4 225.0.0.1\n")
    assert parsed is not None, messages(problems)
    kinds = [(m.kind, m.interface, m.address, m.line) for m in parsed.media]
    assert kinds == [("ucast", "eth0", "server2", 2), ("ucast", "eth1", "10.99.0.2", 4), ("ucast", "eth1", "10.99.0.1", 4),
                     ("bcast", "eth2", None, 5), ("bcast", "eth3", None, 5), ("mcast", "eth0", "239.0.0.1", 6),
                     ("mcast", "eth4", "225.0.0.1", 7)]
    assert (parsed.media[5].port, parsed.media[5].ttl, parsed.media[5].loop) == (694, 2, 0)
    assert (parsed.media[6].port, parsed.media[6].ttl, parsed.media[6].loop) == (None, 1, 0)


def test_comments_tabs_and_blank_lines() -> None:
    text = "# cluster\n\n\tnode\tserver1   server2 # both\nucast eth0 server2#peer\n  \nauto_failback\ton\n"
    parsed, problems = parse_hacf(text, "ha.cf")
    assert parsed is not None, messages(problems)
    assert parsed.media[0].address == "server2" and parsed.nodes == ("server1", "server2")


def test_each_directive_knows_the_line_that_counts() -> None:
    """check-config points at these lines; a directive set twice counts (and is pointed at) where it is last."""
    parsed, problems = hacf("# timers\nkeepalive 1\ndeadtime 30\n\nkeepalive 2  # faster\nping 10.99.0.254\n")
    assert parsed is not None, messages(problems)
    assert parsed.lines["node"] == 1 and parsed.lines["keepalive"] == 8 and parsed.lines["deadtime"] == 6
    assert parsed.lines["ping"] == 9 and "warntime" not in parsed.lines


def test_other_heartbeat_directives_are_accepted_with_a_warning() -> None:
    parsed, problems = hacf("compression bz2\nrespawn hacluster /usr/lib/heartbeat/ipfail\nstonith_host * baytech x y\n"
                            "apiauth ipfail gid=haclient\nrealtime on\ncoredumps true\n")
    assert parsed is not None
    assert [(p.line, p.severity) for p in problems] == [(n, "warning") for n in range(4, 10)]


def test_unknown_directive_is_named_with_a_suggestion() -> None:
    parsed, problems = hacf("deadtim 30\nfrobnicate yes\n")
    assert parsed is None
    assert messages(problems)[0].startswith('ha.cf:4: unknown directive [deadtim] (did you mean "deadtime"?) — ')
    assert "unknown directive [frobnicate] —" in messages(problems)[1]


def test_crm_off_is_fine_and_crm_on_is_refused() -> None:
    assert hacf("crm no\n")[0] is not None
    assert hacf("crm off\n")[0] is not None
    parsed, problems = hacf("crm on\n")
    assert parsed is None and "crm/pacemaker is not supported — remove crm or set crm no" in str(problems[0])


def test_missing_auto_failback_is_heartbeats_legacy_with_a_warning() -> None:
    parsed, problems = parse_hacf("node server1 server2\nucast eth0 server2\n", "ha.cf")
    assert parsed is not None and parsed.auto_failback == "legacy"
    assert problems[0].severity == "warning" and "auto_failback" in problems[0].message


def test_scalar_set_twice_warns_and_the_last_wins() -> None:
    parsed, problems = hacf("udpport 694\nudpport 695\n")
    assert parsed is not None and parsed.udpport == 695
    assert "first set on line 4" in problems[0].message and problems[0].line == 5


def test_other_scalars() -> None:
    parsed, problems = hacf("logfacility local0\nuse_logd no\nping 10.99.0.254 gw\nuuidfrom nodename\ndebug 1\n")
    assert parsed is not None, messages(problems)
    assert (parsed.logfacility, parsed.use_logd, parsed.ping, parsed.uuidfrom, parsed.debug) == (
        "local0", False, ("10.99.0.254", "gw"), "nodename", 1)


# -- haresources ---------------------------------------------------------------------------------

def test_resource_forms() -> None:
    groups, problems = parse_haresources(
        "server1 10.99.0.10 IPaddr2::10.99.0.11/24/eth0/10.99.0.255 IPaddr::10.99.0.12/255.255.255.0 "
        "drbddisk::r0 Filesystem::/dev/drbd0::/srv::ext4 failback.sh\n", "haresources")
    assert problems == []
    r = groups[0].resources
    assert (r[0].name, r[0].args, r[0].spec) == ("IPaddr", ("10.99.0.10",), "10.99.0.10")
    assert (r[0].vip.address, r[0].vip.prefix, r[0].vip.interface) == ("10.99.0.10", None, None)
    assert r[1].name == "IPaddr2" and r[1].vip.broadcast == "10.99.0.255" and r[1].vip.interface == "eth0"
    assert r[2].vip.prefix == 24
    assert (r[3].name, r[3].args) == ("drbddisk", ("r0",))
    assert (r[4].name, r[4].args) == ("Filesystem", ("/dev/drbd0", "/srv", "ext4"))
    assert (r[5].name, r[5].args, r[5].vip) == ("failback.sh", (), None)
    assert groups[0].key == "10.99.0.10" and len(groups[0].vips) == 3


def test_continuation_lines_make_one_group_numbered_by_its_first_line() -> None:
    text = "# comment\n\nserver1 IPaddr::10.99.0.10 \\\n\tfailback.sh \\\n\tother.sh\nserver2 10.99.0.20 # second\n"
    groups, problems = parse_haresources(text, "haresources")
    assert problems == []
    assert [(g.home_node, g.line, [r.spec for r in g.resources]) for g in groups] == [
        ("server1", 3, ["IPaddr::10.99.0.10", "failback.sh", "other.sh"]), ("server2", 6, ["10.99.0.20"])]


def test_same_vip_twice_in_one_group_is_refused() -> None:
    _unused, problems = parse_haresources("server1 10.99.0.10 IPaddr::10.99.0.10/24\n", "haresources")
    assert ["10.99.0.10 is already used on line 1" in m for m in messages(problems)] == [True]


# -- authkeys ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["md5", "sha1", "sha256"])
def test_keyed_methods(method: str) -> None:
    keys, problems = parse_authkeys(f"# keys\nauth 2\n1 crc\n2 {method} s3cr#t\n", "authkeys")
    assert keys is not None and keys.active == 2
    assert keys.active_key.method == method and keys.active_key.secret == b"s3cr#t"
    assert [p.severity for p in problems] == ["warning"]  # crc authenticates nothing


def test_crc_needs_no_key() -> None:
    keys, _unused = parse_authkeys("auth 1\n1 crc\n", "authkeys")
    assert keys is not None and keys.active_key.secret == b""


LEAK = "Sup3r-S3cret-Do-Not-Leak"


@pytest.mark.parametrize("text", [
    f"auth 1\n1 sha1 {LEAK}\n",
    f"auth 2\n1 sha1 {LEAK}\n",
    f"auth 1\n1 sah1 {LEAK}\n",
    f"auth 1\n1 {LEAK}\n",
    f"auth 1\n{LEAK}\n",
    f"auth 1\nsha1 {LEAK}\n",
    f"auth 1\n1 sha1 {LEAK} {LEAK}\n",
    f"auth 1\n1 sha1 {LEAK}\n1 md5 {LEAK}\n",
    f"auth {LEAK}\n1 sha1 x\n",
    f"{LEAK} 1\n",
])
def test_the_secret_never_appears_in_any_output(text: str, tmp_path: Path) -> None:
    config_dir = tmp_path / "ha.d"
    shutil.copytree(SEED, config_dir)
    (config_dir / "authkeys").write_text(text)
    os.chmod(config_dir / "authkeys", 0o644)
    outputs: list[str] = []
    keys, problems = parse_authkeys(text, "authkeys")
    outputs += [repr(keys), str(keys), *map(str, problems), *map(repr, problems)]
    if keys is not None:
        outputs += [repr(keys.active_key), str(keys.active_key), repr(dict(keys.keys))]
    try:
        config = load_config(config_dir, "server1", check_permissions=False, init_dir=tmp_path)
        outputs += [repr(config), str(config), config.digest]
    except ConfigError as exc:
        outputs += [str(exc), repr(exc), *map(repr, exc.problems), *map(str, exc.args)]
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, "server1", init_dir=tmp_path)  # mode 644: always refused
    outputs += [str(caught.value), repr(caught.value)]
    for output in outputs:
        assert LEAK not in output
        assert LEAK.lower() not in output.lower()


# -- hbvip.cf ------------------------------------------------------------------------------------

def test_extensions_defaults_and_values() -> None:
    ext, problems = parse_extensions("", "hbvip.cf")
    assert (ext.garp_count, ext.garp_interval, ext.script_timeout, ext.garp_refresh) == (5, 0.2, 30.0, 0.0)
    ext, problems = parse_extensions("garp_count 3\ngarp_interval 100ms\nscript_timeout 10\ngarp_refresh 30\n", "x")
    assert problems == [] and (ext.garp_count, ext.garp_interval, ext.script_timeout, ext.garp_refresh) == (3, 0.1, 10.0, 30.0)


def test_extension_directive_in_hacf_is_unknown_there() -> None:
    parsed, problems = hacf("garp_count 3\n")
    assert parsed is None and "unknown directive [garp_count]" in problems[0].message
