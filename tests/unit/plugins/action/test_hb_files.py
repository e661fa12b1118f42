"""hbvip.heartbeat.hb_files: the action plugin's run, with its shell script executed by a real `sh` on
this machine in a temporary directory (the connection is the only fake: it runs the command locally).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible.playbook.task import Task

from ansible_collections.hbvip.heartbeat.plugins.action import hb_files


class LocalShell:
    """The connection: runs the command the action sends with its stdin, here."""

    def __init__(self) -> None:
        self.commands: list[bytes] = []

    def run(self, cmd: str, in_data: bytes | None) -> dict[str, Any]:
        self.commands.append(in_data or b"")
        r = subprocess.run(cmd, shell=True, input=in_data, capture_output=True, check=False)
        return {"rc": r.returncode, "stdout": r.stdout.decode(), "stderr": r.stderr.decode()}


def run(args: dict[str, Any], *, check: bool = False, diff: bool = True) -> tuple[dict, LocalShell]:
    task = Task()
    task.args = args
    task.check_mode = check
    task.diff = diff
    shell = LocalShell()
    action = hb_files.ActionModule.__new__(hb_files.ActionModule)
    action._task = task                                         # pylint: disable=protected-access
    action._low_level_execute_command = lambda cmd, in_data=None, sudoable=True: shell.run(cmd, in_data)
    # ActionBase.run's own bookkeeping needs a play context; what it returns for this action is {}.
    original = hb_files.ActionBase.run
    hb_files.ActionBase.run = lambda self, tmp=None, task_vars=None: {}
    try:
        return action.run(task_vars={}), shell
    finally:
        hb_files.ActionBase.run = original


def spec(tmp_path: Path, name: str, content: str, mode: str = "0644", **extra: Any) -> dict[str, Any]:
    return {"path": str(tmp_path / "etc" / name), "content": content, "mode": mode, **extra}


def me() -> dict[str, str]:
    """Owner and group of the files: whoever runs the test (root in CI)."""
    return {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}


def test_a_fresh_set_is_created_with_its_modes_in_one_command_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    files = [spec(tmp_path, "ha.cf", "keepalive 1\n", **me()),
             spec(tmp_path, "authkeys", "auth 1\n1 sha1 k\n", "0600", secret=True, **me())]
    result, shell = run({"files": files, "directories": [str(tmp_path / "etc")]})
    assert result["changed"] and result["files"] == {f["path"]: "new" for f in files}
    assert result["directories_created"] == [str(tmp_path / "etc")]
    assert len(shell.commands) == 1
    assert (tmp_path / "etc" / "ha.cf").read_text() == "keepalive 1\n"
    assert stat.S_IMODE((tmp_path / "etc" / "authkeys").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "etc").stat().st_mode) == 0o755
    assert all("k\n" not in str(d) for d in result["diff"])        # the secret is never shown
    again, _shell = run({"files": files, "directories": [str(tmp_path / "etc")]})
    assert not again["changed"] and set(again["files"].values()) == {"same"} and again["diff"] == []


def test_check_mode_predicts_the_change_shows_the_diff_and_writes_nothing(tmp_path: Path) -> None:
    files = [spec(tmp_path, "ha.cf", "warntime 500ms\n", **me())]
    run({"files": files, "directories": [str(tmp_path / "etc")]})
    changed = [dict(files[0], content="warntime 600ms\n")]
    result, _shell = run({"files": changed}, check=True)
    assert result["changed"] and result["files"] == {files[0]["path"]: "content"}
    assert result["diff"] == [{"before_header": files[0]["path"], "after_header": files[0]["path"],
                               "before": "warntime 500ms\n", "after": "warntime 600ms\n"}]
    assert (tmp_path / "etc" / "ha.cf").read_text() == "warntime 500ms\n"
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == ["ha.cf"]


def test_a_refused_set_writes_no_file_of_it_and_leaves_no_staged_copy(tmp_path: Path) -> None:
    files = [spec(tmp_path, "ha.cf", "a\n", validate_flag="--ha-cf", **me()),
             spec(tmp_path, "haresources", "b\n", validate_flag="--haresources", **me())]
    run({"files": files, "directories": [str(tmp_path / "etc")]})
    validator = tmp_path / "check.sh"
    validator.write_text('#!/bin/sh\necho "checked $*"\ngrep -q bad "$4" && { echo "$4:1: bad line"; exit 2; }\nexit 0\n')
    validator.chmod(0o755)
    new = [dict(files[0], content="a2\n"), dict(files[1], content="bad\n")]
    result, _shell = run({"files": new, "validate": str(validator)})
    assert result["failed"] and result["rc"] == 2
    assert "bad line" in result["msg"] and "none was written" in result["msg"]
    assert [(tmp_path / "etc" / n).read_text() for n in ("ha.cf", "haresources")] == ["a\n", "b\n"]
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == ["ha.cf", "haresources"]
    good = [dict(files[0], content="a2\n"), dict(files[1], content="b2\n")]
    result, _shell = run({"files": good, "validate": str(validator)})
    assert result["changed"] and not result.get("failed")
    assert [(tmp_path / "etc" / n).read_text() for n in ("ha.cf", "haresources")] == ["a2\n", "b2\n"]


def test_only_the_mode_differs_then_only_the_mode_is_set(tmp_path: Path) -> None:
    files = [spec(tmp_path, "hbvip.cf", "check web\n", "0644", **me())]
    run({"files": files, "directories": [str(tmp_path / "etc")]})
    inode = (tmp_path / "etc" / "hbvip.cf").stat().st_ino
    result, _shell = run({"files": [dict(files[0], mode="0600")]})
    assert result["files"] == {files[0]["path"]: "attrs"}
    assert result["diff"][0]["before"].startswith("644 ") and result["diff"][0]["after"].startswith("600 ")
    assert stat.S_IMODE((tmp_path / "etc" / "hbvip.cf").stat().st_mode) == 0o600
    assert (tmp_path / "etc" / "hbvip.cf").stat().st_ino == inode


def test_contents_travel_on_stdin_never_on_a_command_line(tmp_path: Path) -> None:
    files = [spec(tmp_path, "authkeys", "auth 1\n1 sha1 s3cr3t\n", "0600", secret=True, **me())]
    script = hb_files.script(files, [], None, check=False, diff=True)
    assert "s3cr3t" not in script                                 # base64 only, and fed to `sh -s`
    result, shell = run({"files": files, "directories": [str(tmp_path / "etc")]})
    assert result["changed"] and b"s3cr3t" not in shell.commands[0]


@pytest.mark.parametrize("mode", ["0644", 0o644, "644"])
def test_modes_are_read_as_octal(mode: object) -> None:
    assert hb_files._mode(mode) == "644"                         # pylint: disable=protected-access
