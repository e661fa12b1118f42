"""`hbvip haresources`: the groups of a file with the physical lines each one spans.

Tools rewrite one group by its span and keep the rest of the file; a wrong end line would eat a
neighbour's continuation or leave half a group behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hbvip.cli import main
from hbvip.config import parse_haresources

TEXT = (
    "# db pair\n"
    "server1 IPaddr::10.99.0.100/24/eth0 \\\n"
    "    failback.sh   # follows the VIP\n"
    "\n"
    "server2 10.99.0.101/255.255.255.0 \\\n"
    "   \\\n"
    "   proxy\n"
    "server1 IPaddr2::10.99.0.102\n"
)


def test_each_group_spans_its_continuation_lines_and_no_comment_or_blank() -> None:
    groups, problems = parse_haresources(TEXT, "haresources")
    assert problems == []
    assert [(g.line, g.end_line) for g in groups] == [(2, 3), (5, 7), (8, 8)]


def test_file_ending_inside_a_continuation_ends_the_group_at_the_last_line() -> None:
    groups, problems = parse_haresources("server1 10.99.0.100 \\\n  failback.sh \\", "haresources")
    assert problems == []
    assert [(g.line, g.end_line) for g in groups] == [(1, 2)]


def test_json_output_gives_spans_and_parsed_vips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "haresources"
    f.write_text(TEXT)
    assert main(["haresources", "--file", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    second = out["groups"][1]
    assert (second["home_node"], second["line"], second["end_line"]) == ("server2", 5, 7)
    assert second["resources"][0]["vip"] == {"address": "10.99.0.101", "prefix": 24, "interface": None,
                                             "broadcast": None}
    assert [r["spec"] for r in second["resources"]] == ["10.99.0.101/255.255.255.0", "proxy"]


def test_bad_line_is_reported_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "haresources"
    f.write_text("server1 IPaddr::10.99.0.300/24\n")
    assert main(["haresources", "--file", str(f), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["groups"] == [] and out["problems"][0]["line"] == 1


def test_missing_file_is_a_runtime_error(tmp_path: Path) -> None:
    assert main(["haresources", "--file", str(tmp_path / "nope")]) == 1
