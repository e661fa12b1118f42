"""hb_vip, table-driven (test_hb_vip.yaml): present/absent/active/standby x check mode x already in state.

The fake agent is fake_agent.py's; each case also asserts which changing commands ran: none in check
mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.hbvip.heartbeat.plugins.modules import hb_vip
from fake_agent import run_module

CASES = yaml.safe_load((Path(__file__).with_suffix(".yaml")).read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hb_vip(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = {**case["input"], "_ansible_diff": True}
    result, agent = run_module(hb_vip.main, case, args, tmp_path, monkeypatch)
    expect = case["expect"]
    assert result.get("failed", False) == expect.get("failed", False), result
    if "msg" in expect:
        assert expect["msg"] in result["msg"]
    if "changed" in expect:
        assert result["changed"] == expect["changed"]
    assert agent.ran == expect["ran"]
    path = tmp_path / "ha.d" / "haresources"
    want = expect.get("file", case["haresources"])
    assert (path.read_text(encoding="utf-8") if path.exists() else None) == want
    for key in ("holder", "peer_state"):
        if key in expect:
            assert result[key] == expect[key]
    if "groups" in expect:
        assert len(result["groups"]) == expect["groups"]
    cf = tmp_path / "ha.d" / "hbvip.cf"
    want_cf = expect.get("hbvip_cf", case.get("hbvip_cf"))
    assert (cf.read_text(encoding="utf-8") if cf.exists() else None) == want_cf
    if want_cf is not None and case.get("hbvip_cf") is None:
        assert cf.stat().st_mode & 0o777 == 0o600  # a new hbvip.cf: a check's command may carry a credential
    diffs = result.get("diff") if isinstance(result.get("diff"), list) else [result.get("diff") or {}]
    if "diff_after" in expect:
        assert expect["diff_after"] in diffs[0]["after"]
    if "cf_diff_after" in expect:
        assert len(diffs) == 2 and expect["cf_diff_after"] in diffs[1]["after"]
    if "checks" in expect:
        assert [(c["name"], c["fall"], c["group"]) for c in result["checks"]] == [tuple(c) for c in expect["checks"]]
    if "checked_cf" in expect:
        assert agent.checked_cf == expect["checked_cf"]
    if "reload" in expect:
        assert expect["reload"] in result["reload"]
