"""hbvip.cf between the role and hb_vip: the role's file, with the checks hb_vip declared for its own groups kept.

A check names the group it guards (`group KEY`); the role owns hbvip.cf but a check of a group the role
keeps for hb_vip is hb_vip's, and a role run that dropped it would silently stop guarding a service.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hbvip.cli import main
from hbvip.config.plan import check_set, merge_extensions

HEADER = "# Ansible managed\n"
ROLE_GROUP = "server1 IPaddr::10.99.0.100/24/eth0 IPv6addr::fd99:1::100/64/eth0 failback.sh"
MODULE_GROUP = "server2 IPaddr::10.99.0.101/24/eth0 failback.sh\n"
HACF = "node server1 server2\nucast eth0 10.99.0.1\nucast6 eth1 fd99:1:1::2\nkeepalive 1\ndeadtime 5\n"
AUTHKEYS = "auth 1\n1 sha1 labsecret-0123\n"
ROLE_CF = HEADER + 'check web command "curl -sf http://127.0.0.1/" interval 2 fall 3\ntrack_interface eth0\n'
MODULE_CHECK = "check db command 'pg_isready -q' fall 2 group IPaddr::10.99.0.101/24/eth0\n"


def test_the_module_check_of_a_kept_group_stays_after_the_roles_lines() -> None:
    current = "# old head\ngarp_count 3\n" + MODULE_CHECK + 'check old command "true"\n'
    merged = merge_extensions(current, ROLE_CF, ("IPaddr::10.99.0.101/24/eth0",), "/etc/ha.d/hbvip.cf")
    assert merged == ROLE_CF + MODULE_CHECK


def test_a_converged_file_comes_back_byte_identical() -> None:
    current = ROLE_CF + MODULE_CHECK
    assert merge_extensions(current, ROLE_CF, ("IPaddr::10.99.0.101/24/eth0",), "hbvip.cf") == current


def test_the_check_of_a_group_that_left_haresources_leaves_with_it() -> None:
    assert merge_extensions(ROLE_CF + MODULE_CHECK, ROLE_CF, (), "hbvip.cf") == ROLE_CF


def test_the_set_check_sees_hbvip_cf_and_its_references_to_haresources() -> None:
    files = {"ha.cf": HACF, "authkeys": AUTHKEYS, "haresources": HEADER + ROLE_GROUP + "\n",
             "hbvip.cf": ROLE_CF + "check x command true group IPaddr::10.99.0.9/24\n"}
    problems = [p for p in check_set(files, "server1", "/etc/ha.d") if p.is_error]
    assert [(p.path, p.line) for p in problems] == [("/etc/ha.d/hbvip.cf", 4)]
    assert "no haresources group" in problems[0].message


def test_plan_config_returns_the_merged_hbvip_cf(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    request = {"node_name": "server1", "config_dir": "/etc/ha.d", "files": {"ha.cf": HACF, "authkeys": AUTHKEYS},
               "haresources": {"current": HEADER + ROLE_GROUP + "\n" + MODULE_GROUP, "header": HEADER,
                               "lines": [ROLE_GROUP]},
               "hbvip_cf": {"current": ROLE_CF + MODULE_CHECK, "text": ROLE_CF}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(request)))
    assert main(["plan-config"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["hbvip_cf"] == ROLE_CF + MODULE_CHECK and answer["ok"]


def test_check_config_takes_a_candidate_hbvip_cf_alone_or_with_the_set(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.cf", tmp_path / "bad.cf"
    good.write_text(ROLE_CF)
    bad.write_text('check web command "curl" fall zero\n')
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check-config", "--config-dir", str(empty), "--file-only", "--hbvip-cf", str(good)]) == 0
    assert main(["check-config", "--config-dir", str(empty), "--file-only", "--hbvip-cf", str(bad)]) == 2
    assert f"{bad}:1: fall value 'zero' is not valid" in capsys.readouterr().err


def test_extensions_prints_each_check_with_its_line_and_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cf = tmp_path / "hbvip.cf"
    cf.write_text(ROLE_CF + MODULE_CHECK)
    assert main(["extensions", "--file", str(cf), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert [(c["name"], c["line"], c["group"]) for c in view["checks"]] == [
        ("web", 2, None), ("db", 4, "IPaddr::10.99.0.101/24/eth0")]
    assert view["checks"][1]["command"] == "pg_isready -q" and view["checks"][1]["fall"] == 2
    assert view["checks"][0]["interval"] == 2.0 and view["track_interfaces"][0]["interface"] == "eth0"


def test_extensions_of_a_missing_hbvip_cf_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extensions", "--config-dir", str(tmp_path), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["exists"] is False and view["checks"] == []
