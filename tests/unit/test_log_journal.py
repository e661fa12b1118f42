"""The agent's log under systemd: classic lines reach the journal (issue 16) without a doubled prefix."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from hbvip.log import EventLog


def _stderr_to(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", open(path, "w", encoding="utf-8"))


def test_journal_stream_on_stderr_gets_classic_line_with_priority_and_logfile_keeps_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stderr_to(tmp_path / "journal", monkeypatch)
    st = os.fstat(sys.stderr.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    log = EventLog("server2", logfile=str(tmp_path / "ha-log"))
    log("warning", "peer.dead", "node server1: is dead", {"node": "server1"})
    log("info", "resources.acquire", "Resources being acquired from server1.")
    log("debug", "hb.recv", "not shown")
    sys.stderr.flush()
    assert (tmp_path / "journal").read_text().splitlines() == [
        "<4>WARN: node server1: is dead",
        "<4>WARN: event=peer.dead node=server1",
        "<6>info: Resources being acquired from server1.",
        "<6>info: event=resources.acquire",
    ]
    assert "server2 hbvip: [" in (tmp_path / "ha-log").read_text()
    assert "WARN: node server1: is dead" in (tmp_path / "ha-log").read_text()


def test_inherited_journal_stream_naming_another_file_is_not_the_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stderr_to(tmp_path / "stderr", monkeypatch)
    other = os.stat(tmp_path)
    monkeypatch.setenv("JOURNAL_STREAM", f"{other.st_dev}:{other.st_ino}")
    log = EventLog("server2", logfile=str(tmp_path / "ha-log"))
    log("warning", "peer.dead", "node server1: is dead")
    sys.stderr.flush()
    assert (tmp_path / "stderr").read_text() == ""
    assert "node server1: is dead" in (tmp_path / "ha-log").read_text()
