"""hb_vip_info, table-driven (test_hb_vip_info.yaml): agent running or not, check mode, bad file.

The fake agent of fake_agent.py (`hbvip haresources` is the agent's real parser and view); every case also
asserts that no changing command ran and that haresources is byte-identical afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.hbvip.heartbeat.plugins.modules import hb_vip_info
from fake_agent import run_module

CASES = yaml.safe_load((Path(__file__).with_suffix(".yaml")).read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hb_vip_info(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, agent = run_module(hb_vip_info.main, case, {}, tmp_path, monkeypatch)
    expect = case["expect"]
    assert agent.ran == []
    path = tmp_path / "ha.d" / "haresources"
    assert (path.read_text(encoding="utf-8") if path.exists() else None) == case["haresources"]
    assert result.get("failed", False) == expect.get("failed", False), result
    if expect.get("failed"):
        assert expect["msg"] in result["msg"]
        return
    assert result["changed"] is False
    assert result["running"] == expect["running"]
    for key in ("node", "peer"):
        if key in expect:
            assert result[key] == expect[key]
    assert [[g["key"], g["home_node"], g["holder"]] for g in result["groups"]] == expect["holders"]
    if "states" in expect:
        assert [g["state"] for g in result["groups"]] == expect["states"]
    if "vips" in expect:
        assert [g["vips"] for g in result["groups"]] == expect["vips"]
