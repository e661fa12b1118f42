"""`hbvip rename-node`: node names change in ha.cf and haresources, no other byte does.

The rename playbook writes what this computes to both nodes of a pair, so a byte lost here (a
continuation line, a comment, a CRLF) would be lost on both; a name renamed inside a comment or a
longer word would be a silent edit an operator never asked for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hbvip.cli import main
from hbvip.config import parse_hacf, parse_haresources
from hbvip.config.rename import plan_rename

# As roles/heartbeat_vip/templates/ha.cf.j2 renders it, plus what an operator may have added by hand.
HACF = (
    "# Ansible managed\n"
    "# hbvip.heartbeat pair server1 server2, VIP 10.99.0.100\n"
    "logfile /var/log/ha-log\n"
    "ucast eth0 10.99.0.1\n"
    "ucast\teth1  server2   # the peer by name; server1 stays in this comment\n"
    "keepalive 1\n"
    "deadtime 5\n"
    "node server1 server2\n"
    "ping 10.99.0.254\n"
    "auto_failback on\n"
)
HACF_RENAMED = HACF.replace("pair server1 server2", "pair db1 db2").replace(
    "eth1  server2", "eth1  db2").replace("node server1 server2", "node db1 db2")

HARESOURCES = (
    "# server1 serves the db; this comment keeps its name\n"
    "server1 IPaddr::10.99.0.100/24/eth0 \\\n"
    "    failback.sh   # server1 here too\n"
    "\n"
    "server2\t10.99.0.101/255.255.255.0 \\\n"
    "   \\\n"
    "   MailTo::server1::ops\n"
    "server10 IPaddr2::10.99.0.102\n"
)
HARESOURCES_RENAMED = HARESOURCES.replace("server1 IPaddr", "db1 IPaddr").replace("server2\t", "db2\t")


def plan(hacf: str, haresources: str, renames: dict[str, str]):
    return plan_rename({"ha.cf": hacf, "haresources": haresources},
                       {"ha.cf": "/etc/ha.d/ha.cf", "haresources": "/etc/ha.d/haresources"}, renames)


def test_only_the_names_change_comments_continuations_and_longer_words_stay() -> None:
    (hacf, hares), problems = plan(HACF, HARESOURCES, {"server1": "db1", "server2": "db2"})
    assert problems == []
    assert hacf.after == HACF_RENAMED
    assert hares.after == HARESOURCES_RENAMED
    assert (hacf.lines, hares.lines) == ((2, 5, 8), (2, 5))


def test_the_agent_reads_the_new_names_from_the_result() -> None:
    (hacf, hares), problems = plan(HACF, HARESOURCES, {"server1": "db1", "server2": "db2"})
    assert problems == []
    parsed, warnings = parse_hacf(hacf.after, "ha.cf")
    assert not any(w.is_error for w in warnings)
    assert parsed is not None and parsed.nodes == ("db1", "db2")
    assert [m.address for m in parsed.media] == ["10.99.0.1", "db2"]
    groups, problems = parse_haresources(hares.after, "haresources")
    assert problems == []
    assert [g.home_node for g in groups] == ["db1", "db2", "server10"]
    assert [(g.line, g.end_line) for g in groups] == [(2, 3), (5, 7), (8, 8)]


def test_crlf_tabs_and_a_file_without_final_newline_are_kept() -> None:
    hacf = "node\tserver1 server2\r\nucast eth0 server1\r\nauto_failback on"
    hares = "server1 10.99.0.100 \\\r\n  failback.sh"
    (e1, e2), problems = plan(hacf, hares, {"server1": "db1"})
    assert problems == []
    assert e1.after == "node\tdb1 server2\r\nucast eth0 db1\r\nauto_failback on"
    assert e2.after == "db1 10.99.0.100 \\\r\n  failback.sh"


def test_one_node_at_a_time_and_names_compared_without_case() -> None:
    (hacf, hares), problems = plan("node Server1 server2\n", "SERVER1 10.99.0.100\nserver2 10.99.0.101\n", {"server1": "db1"})
    assert problems == []
    assert (hacf.after, hares.after) == ("node db1 server2\n", "db1 10.99.0.100\nserver2 10.99.0.101\n")


def test_a_rerun_after_the_rename_changes_nothing() -> None:
    (hacf, hares), problems = plan(HACF_RENAMED, HARESOURCES_RENAMED, {"server1": "db1", "server2": "db2"})
    assert problems == []
    assert not hacf.changed and not hares.changed
    assert hacf.diff() == "" and hares.diff() == ""


@pytest.mark.parametrize("renames, message", [
    ({"server3": "db3"}, "node server3 is not on a node line of ha.cf"),
    ({"server1": "-db1"}, "new node name '-db1' is not a valid host name"),
    ({"server1": "server2"}, "would give two nodes one name"),
    ({"server1": "db", "server2": "DB"}, "would give two nodes one name"),
])
def test_bad_requests_are_refused_with_nothing_planned(renames: dict[str, str], message: str) -> None:
    edits, problems = plan(HACF, HARESOURCES, renames)
    assert edits == []
    assert [message in p.message for p in problems] == [True]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "ha.cf").write_text(HACF, encoding="utf-8")
    (tmp_path / "haresources").write_text(HARESOURCES, encoding="utf-8")
    (tmp_path / "haresources").chmod(0o640)
    return tmp_path


def snapshot(config_dir: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(config_dir.iterdir())}


def test_cli_check_with_diff_prints_the_diff_and_writes_nothing(config_dir: Path, capsys: pytest.CaptureFixture) -> None:
    before = snapshot(config_dir)
    assert main(["rename-node", "--config-dir", str(config_dir), "--check", "--diff", "server1=db1", "server2=db2"]) == 0
    out = capsys.readouterr().out
    assert snapshot(config_dir) == before
    assert f"--- {config_dir}/ha.cf\n+++ {config_dir}/ha.cf\n" in out
    assert "-node server1 server2\n+node db1 db2\n" in out
    assert "-server1 IPaddr::10.99.0.100/24/eth0 \\\n+db1 IPaddr::10.99.0.100/24/eth0 \\\n" in out
    assert "(check: not written)" in out


def test_cli_json_says_changed_and_gives_the_new_contents(config_dir: Path, capsys: pytest.CaptureFixture) -> None:
    before = snapshot(config_dir)
    assert main(["rename-node", "--config-dir", str(config_dir), "--check", "--json", "server1=db1", "server2=db2"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert snapshot(config_dir) == before
    assert answer["changed"] is True and answer["check"] is True and answer["problems"] == []
    assert [(Path(f["path"]).name, f["changed"], f["content"]) for f in answer["files"]] == [
        ("ha.cf", True, HACF_RENAMED), ("haresources", True, HARESOURCES_RENAMED)]
    assert all("diff" not in f for f in answer["files"])


def test_cli_writes_the_names_keeps_the_modes_and_a_rerun_is_unchanged(
        config_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["rename-node", "--config-dir", str(config_dir), "server1=db1", "server2=db2"]) == 0
    assert (config_dir / "ha.cf").read_text(encoding="utf-8") == HACF_RENAMED
    assert (config_dir / "haresources").read_text(encoding="utf-8") == HARESOURCES_RENAMED
    assert (config_dir / "haresources").stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(config_dir)) == ["ha.cf", "haresources"]  # no temp file left
    capsys.readouterr()
    after = snapshot(config_dir)
    assert main(["rename-node", "--config-dir", str(config_dir), "--json", "--diff", "server1=db1", "server2=db2"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["changed"] is False and [f["diff"] for f in answer["files"]] == ["", ""]
    assert snapshot(config_dir) == after


def test_cli_refusal_exits_2_names_the_problem_and_writes_nothing(config_dir: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    before = snapshot(config_dir)
    assert main(["rename-node", "--config-dir", str(config_dir), "server3=db3"]) == 2
    assert "node server3 is not on a node line of ha.cf" in capsys.readouterr().err
    assert snapshot(config_dir) == before


def test_cli_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["rename-node", "--config-dir", str(tmp_path), "server1=db1"]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_cli_rejects_an_argument_that_is_not_old_equals_new(config_dir: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["rename-node", "--config-dir", str(config_dir), "server1"])
    assert exc.value.code == 2
