"""The fake `hbvip` the module tests run against (test_hb_vip, test_hb_vip_info), and the harness that
calls a module's main() with it.

Only the daemon is faked. `hbvip haresources` answers with the agent's real parser and its real JSON
view (`hbvip.views.haresources_view`), so the modules are held to the grammar and the shape the agent
has; check-config, status, reload and the moves answer from the table case.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hbvip.heartbeat.plugins.module_utils import _hbvip

COLLECTION = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(COLLECTION / "agent" / "src"))
from hbvip.config import parse_haresources  # noqa: E402  pylint: disable=wrong-import-position
from hbvip.config.extensions import parse_extensions  # noqa: E402  pylint: disable=wrong-import-position
from hbvip.views import extensions_view, haresources_view  # noqa: E402  pylint: disable=wrong-import-position


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
        self.checked_cf: str | None = None

    def run_command(self, args: list[str]) -> tuple[int, str, str]:
        if args[0] == _hbvip.HEARTBEAT_INIT:
            self.ran.append(" ".join(args))
            return 0, "", ""
        sub = args[1]
        if sub == "haresources":
            return self.haresources(args[args.index("--file") + 1])
        if sub == "extensions":
            return self.extensions(args[args.index("--file") + 1])
        if sub == "check-config":
            if "--hbvip-cf" in args:
                self.checked_cf = Path(args[args.index("--hbvip-cf") + 1]).read_text(encoding="utf-8")
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
        """What `hbvip haresources --json` prints, from the agent's own parser and view."""
        groups, problems = parse_haresources(Path(path).read_text(encoding="utf-8"), path)
        return (2 if any(p.is_error for p in problems) else 0), json.dumps(haresources_view(path, groups, problems)), ""

    @staticmethod
    def extensions(path: str) -> tuple[int, str, str]:
        """What `hbvip extensions --json` prints, from the agent's own parser and view."""
        ext, problems = parse_extensions(Path(path).read_text(encoding="utf-8"), path)
        view = extensions_view(path, True, ext, problems)
        return (2 if any(p.is_error for p in problems) else 0), json.dumps(view), ""


def run_module(main: Callable[[], None], case: dict[str, Any], args: dict[str, Any], tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> tuple[dict, FakeAgent]:
    """Run a module's main() with `args` (plus config_dir and hbvip_path) against the fake agent of
    `case`; returns what it exited with and the agent (what ran)."""
    config_dir = tmp_path / "ha.d"
    config_dir.mkdir()
    if case["haresources"] is not None:
        (config_dir / "haresources").write_text(case["haresources"], encoding="utf-8")
    if case.get("hbvip_cf") is not None:
        (config_dir / "hbvip.cf").write_text(case["hbvip_cf"], encoding="utf-8")
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
    args = {**args, "config_dir": str(config_dir), "hbvip_path": case.get("hbvip_path", str(binary)),
            "_ansible_check_mode": bool(case.get("check_mode")), "_ansible_remote_tmp": str(tmp_path / "remote")}
    with patch_module_args(args), pytest.raises(ModuleExit) as exc:
        main()
    return exc.value.result, agent
