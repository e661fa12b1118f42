"""load_config on the seed's own files, and the rules that need more than one file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hbvip.config import (
    ConfigError,
    Problem,
    format_problems,
    load_config,
    resolve_script,
)

SECRET = "labsecret-0123"


@pytest.fixture
def seed(config_dir: Path) -> Path:
    """The shared seed copy (tests/unit/conftest.py), under the name these tests use."""
    return config_dir


@pytest.fixture
def no_init(tmp_path: Path) -> Path:
    return tmp_path / "no-init.d"


def test_seed_files_load_as_the_howto_means_them(seed: Path, no_init: Path) -> None:
    config = load_config(seed, "server1", init_dir=no_init)
    hacf = config.hacf
    assert hacf.nodes == ("server1", "server2")
    assert [(m.kind, m.interface, m.address) for m in hacf.media] == [
        ("ucast", "eth0", "server1"), ("ucast", "eth0", "server2")]
    assert hacf.udpport == 694
    assert (hacf.timers.keepalive, hacf.timers.warntime, hacf.timers.deadtime, hacf.timers.initdead) == (1, 3, 5, 10)
    assert hacf.auto_failback == "on"
    assert (hacf.logfile, hacf.debugfile, hacf.autojoin) == ("/var/log/ha-log", "/var/log/ha-debug", "none")
    (group,) = config.groups
    assert group.home_node == "server1"
    assert group.key == "IPaddr::10.99.0.100/24/eth0"
    assert [r.name for r in group.resources] == ["IPaddr", "failback.sh"]
    assert group.vips[0].address == "10.99.0.100" and group.vips[0].prefix == 24
    assert group.vips[0].interface == "eth0"
    assert config.authkeys.active_key.method == "sha1"
    assert config.authkeys.active_key.secret == SECRET.encode()
    assert config.peers == ("server2",)
    assert config.warnings == ()
    assert len(config.digest) == 16


def test_the_same_files_serve_the_other_node(seed: Path, no_init: Path) -> None:
    assert load_config(seed, "server2", init_dir=no_init).peers == ("server1",)


def test_node_name_defaults_to_uname(seed: Path, no_init: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(seed, init_dir=no_init)
    if os.uname().nodename not in ("server1", "server2"):
        assert f"Current node [{os.uname().nodename}] not in configuration!" in str(caught.value)


def test_unknown_node_gets_heartbeats_words_and_a_fix(seed: Path, no_init: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(seed, "server9", init_dir=no_init)
    (problem,) = caught.value.problems
    assert str(problem) == (f"{seed}/ha.cf:11: Current node [server9] not in configuration! — add server9 "
                            "(this host's `uname -n`) to the 'node' line, or fix the hostname")


def test_authkeys_readable_by_group_is_refused_with_heartbeats_message(seed: Path, no_init: Path) -> None:
    os.chmod(seed / "authkeys", 0o644)
    with pytest.raises(ConfigError) as caught:
        load_config(seed, "server1", init_dir=no_init)
    assert f"Bad permissions on keyfile [{seed / 'authkeys'}], 600 recommended." in str(caught.value)
    assert load_config(seed, "server1", check_permissions=False, init_dir=no_init).authkeys.active == 1


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o601])
def test_any_group_or_other_bit_on_authkeys_is_refused(seed: Path, no_init: Path, mode: int) -> None:
    os.chmod(seed / "authkeys", mode)
    with pytest.raises(ConfigError, match="Bad permissions on keyfile"):
        load_config(seed, "server1", init_dir=no_init)


def test_all_problems_of_all_files_come_at_once(seed: Path, no_init: Path) -> None:
    (seed / "ha.cf").write_text((seed / "ha.cf").read_text() + "crm yes\nkeepalve 2\n")
    (seed / "haresources").write_text("server1 IPaddr::10.99.0.300/24/eth0 failback.sh\n")
    (seed / "authkeys").write_text("auth 3\n1 sha1 x\n")
    (seed / "hbvip.cf").write_text("garp_count many\n")
    with pytest.raises(ConfigError) as caught:
        load_config(seed, "server1", init_dir=no_init)
    where = [(Path(p.path).name, p.line) for p in caught.value.problems]
    assert where == [("ha.cf", 13), ("ha.cf", 14), ("haresources", 1), ("authkeys", 1), ("hbvip.cf", 1)]
    assert str(caught.value) == format_problems(caught.value.problems)
    assert len(str(caught.value).splitlines()) == 5


def test_every_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, "server1", init_dir=tmp_path)
    assert [Path(p.path).name for p in caught.value.problems] == ["ha.cf", "haresources", "authkeys"]
    assert all("not found" in p.message for p in caught.value.problems)


def test_scripts_are_found_in_resource_d_before_init_d(seed: Path, tmp_path: Path) -> None:
    init_dir = tmp_path / "init.d"
    init_dir.mkdir()
    for name in ("failback.sh", "apache2"):
        (init_dir / name).write_text("#!/bin/sh\n")
        os.chmod(init_dir / name, 0o755)
    assert resolve_script(seed, "failback.sh", init_dir) == seed / "resource.d" / "failback.sh"
    assert resolve_script(seed, "apache2", init_dir) == init_dir / "apache2"
    assert resolve_script(seed, "IPaddr", init_dir) is None
    assert resolve_script(seed, "nosuch", init_dir) is None
    (seed / "haresources").write_text("server1 IPaddr::10.99.0.100/24/eth0 failback.sh apache2\n")
    assert [r.name for r in load_config(seed, "server1", init_dir=init_dir).groups[0].resources][-1] == "apache2"


def test_digest_follows_hacf_haresources_and_extensions_but_not_the_secret(seed: Path, no_init: Path) -> None:
    before = load_config(seed, "server1", init_dir=no_init).digest
    assert load_config(seed, "server2", init_dir=no_init).digest == before
    (seed / "authkeys").write_text("auth 1\n1 sha1 another-secret\n")
    assert load_config(seed, "server1", init_dir=no_init).digest == before
    (seed / "hbvip.cf").write_text("garp_count 3\n")
    changed = load_config(seed, "server1", init_dir=no_init)
    assert changed.digest != before and changed.ext.garp_count == 3
    (seed / "hbvip.cf").unlink()
    (seed / "haresources").write_text("server2 IPaddr::10.99.0.100/24/eth0 failback.sh\n")
    assert load_config(seed, "server1", init_dir=no_init).digest != before


def test_warnings_do_not_stop_loading_and_are_kept(seed: Path, no_init: Path) -> None:
    (seed / "ha.cf").write_text((seed / "ha.cf").read_text() + "compression bz2\n")
    config = load_config(seed, "server1", init_dir=no_init)
    (warning,) = config.warnings
    assert warning.severity == "warning" and warning.line == 13
    assert str(warning).startswith(f"{seed}/ha.cf:13: warning: compression is a Heartbeat directive hbvip ignores")


def test_problem_without_line_has_no_line_in_its_text() -> None:
    assert str(Problem("/etc/ha.d/ha.cf", None, "bad", "fix it")) == "/etc/ha.d/ha.cf: bad — fix it"
    assert str(Problem("/etc/ha.d/ha.cf", 3, "bad", "fix it")) == "/etc/ha.d/ha.cf:3: bad — fix it"
