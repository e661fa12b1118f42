"""hb_vip, table-driven (test_hb_vip.yaml): present/absent/active/standby x check mode x already in state.

Only the daemon is faked. `hbvip haresources` answers with the agent's real parser, so the module
is held to the grammar the agent will load; check-config, status, reload and the moves answer
from the table. Each case also asserts which changing commands ran: none in check mode.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hbvip.heartbeat.plugins.module_utils import _hbvip
from ansible_collections.hbvip.heartbeat.plugins.modules import hb_vip

COLLECTION = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(COLLECTION / "agent" / "src"))
from hbvip.config import parse_haresources  # noqa: E402  pylint: disable=wrong-import-position

CASES = yaml.safe_load((Path(__file__).with_suffix(".yaml")).read_text(encoding="utf-8"))["cases"]


class ModuleExit(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg"))
        self.result = result


class FakeAgent:
    """The `hbvip` commands the module runs, answered from one table case."""

    def __init__(self, case: dict[str, Any]) -> None:
        self.case = case
        self.ran: list[str] = []
        self.acted = False

    def run_command(self, args: list[str]) -> tuple[int, str, str]:
        if args[0] == _hbvip.HEARTBEAT_INIT:
            self.ran.append(" ".join(args))
            return 0, "", ""
        sub = args[1]
        if sub == "haresources":
            return self.haresources(args[args.index("--file") + 1])
        if sub == "check-config":
            problems = self.case.get("check_config") or []
            return (2 if problems else 0), json.dumps({"ok": not problems, "problems": problems}), ""
        if sub == "status":
            status = self.case.get("status_after", self.case["status"]) if self.acted else self.case["status"]
            return (0, json.dumps(status), "") if status else (1, "", "hbvip: no agent running")
        if sub == "reload":
            self.ran.append("reload")
            self.acted = True
            answer = self.case.get("reload") or {"rc": 0, "out": "hbvip reload: reloaded"}
            return answer["rc"], answer["out"], ""
        if sub in ("takeover", "standby"):
            self.ran.append(f"{sub} {args[2]}")
            self.acted = True
            answer = self.case["move"]
            return (0 if answer["ok"] else 1), json.dumps(answer), ""
        raise AssertionError(f"unexpected command {args}")

    @staticmethod
    def haresources(path: str) -> tuple[int, str, str]:
        """What `hbvip haresources --json` prints, from the agent's own parser."""
        groups, problems = parse_haresources(Path(path).read_text(encoding="utf-8"), path)
        out = {"path": path, "problems": [dataclasses.asdict(p) for p in problems], "groups": [
            {"key": g.key, "home_node": g.home_node, "line": g.line, "end_line": g.end_line,
             "resources": [{"name": r.name, "args": list(r.args), "spec": r.spec,
                            "vip": dataclasses.asdict(r.vip) if r.vip else None} for r in g.resources]}
            for g in groups]}
        return (2 if any(p.is_error for p in problems) else 0), json.dumps(out), ""


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
    monkeypatch.setattr(_hbvip, "heartbeat_running", lambda: bool(case.get("heartbeat_running")))
    args = {**case["input"], "config_dir": str(config_dir), "hbvip_path": case.get("hbvip_path", str(binary)),
            "_ansible_check_mode": bool(case.get("check_mode")), "_ansible_diff": True,
            "_ansible_remote_tmp": str(tmp_path / "remote")}
    with patch_module_args(args), pytest.raises(ModuleExit) as exc:
        hb_vip.main()
    return exc.value.result, agent


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hb_vip(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, agent = run_module(case, tmp_path, monkeypatch)
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
    if "diff_after" in expect:
        assert expect["diff_after"] in result["diff"]["after"]
    if "reload" in expect:
        assert expect["reload"] in result["reload"]
