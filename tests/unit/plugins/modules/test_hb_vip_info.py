"""hb_vip_info, table-driven (test_hb_vip_info.yaml): agent running or not, check mode, bad file.

The same fake agent as test_hb_vip (`hbvip haresources` is the agent's real parser); every case also
asserts that no changing command ran and that haresources is byte-identical afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hbvip.heartbeat.plugins.modules import hb_vip_info
from test_hb_vip import FakeAgent, ModuleExit

CASES = yaml.safe_load((Path(__file__).with_suffix(".yaml")).read_text(encoding="utf-8"))["cases"]


def run_module(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, FakeAgent]:
    config_dir = tmp_path / "ha.d"
    config_dir.mkdir()
    if case["haresources"] is not None:
        (config_dir / "haresources").write_text(case["haresources"], encoding="utf-8")
    binary = tmp_path / "hbvip"
    binary.write_text("#!/bin/sh\nexit 99\n", encoding="utf-8")
    binary.chmod(0o755)
    agent = FakeAgent(case)

    def exit_json(_self: basic.AnsibleModule, **result: Any) -> None:
        raise ModuleExit(result)

    def fail_json(_self: basic.AnsibleModule, msg: str, **result: Any) -> None:
        raise ModuleExit({"failed": True, "msg": msg, **result})

    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _self, args, **_kw: agent.run_command(args))
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    args = {"config_dir": str(config_dir), "hbvip_path": case.get("hbvip_path", str(binary)),
            "_ansible_check_mode": bool(case.get("check_mode")), "_ansible_remote_tmp": str(tmp_path / "remote")}
    with patch_module_args(args), pytest.raises(ModuleExit) as exc:
        hb_vip_info.main()
    return exc.value.result, agent


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hb_vip_info(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, agent = run_module(case, tmp_path, monkeypatch)
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
