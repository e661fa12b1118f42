"""`hbvip restart-in-place`'s exit codes, which the role's rolling restart reads: 0 the new agent runs and
kept the groups (or, with --check, would), 3 refused (hand over and restart instead), 1 anything else."""

from __future__ import annotations

from typing import Any

import pytest

from hbvip import cli, control

OLD = {"generation": 7, "uptime_s": 3600.0, "version": "1.0", "hold": "local"}


def run(monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any], successors: list[object], *extra: str) -> int:
    """The CLI against a fake control socket: `answer` to the request, then `successors` to each status poll
    (an exception: no agent answering at that moment)."""
    monkeypatch.setattr(cli, "_call", lambda _args, req: {"ok": True, "status": OLD} if req["cmd"] == "status" else answer)
    polls = iter(successors)

    def poll(_run_dir: object, _request: object, timeout: float) -> dict[str, Any]:
        got = next(polls)
        if isinstance(got, Exception):
            raise got
        return {"ok": True, "status": got}

    monkeypatch.setattr(control, "call", poll)
    return cli.main(["restart-in-place", "--timeout", "5", *extra])


def test_a_refusal_exits_3_with_the_reason(monkeypatch, capsys):
    assert run(monkeypatch, {"ok": False, "message": "refused: server2 is not settled"}, []) == cli.EXIT_REFUSED
    assert "server2 is not settled" in capsys.readouterr().err


def test_an_agent_that_predates_the_command_counts_as_a_refusal(monkeypatch, capsys):
    answer = {"ok": False, "error": "unknown command 'restart-in-place': status, standby, takeover, reload, cleanup"}
    assert run(monkeypatch, answer, []) == cli.EXIT_REFUSED


def test_check_only_asks(monkeypatch, capsys):
    assert run(monkeypatch, {"ok": True, "message": "would restart in place, keeping local resources"}, [],
               "--check") == 0
    assert "would restart" in capsys.readouterr().out


def test_it_waits_for_the_successor_and_says_it_kept_the_groups(monkeypatch, capsys):
    successors = [FileNotFoundError(), ConnectionRefusedError(), OLD,
                  {**OLD, "uptime_s": 0.0, "version": "1.1"}]
    assert run(monkeypatch, {"ok": True, "message": "restarting in place"}, successors) == 0
    assert "hbvip 1.1 (was 1.0) runs, holding local resources" in capsys.readouterr().out


def test_a_successor_that_started_afresh_is_an_error(monkeypatch, capsys):
    successors = [{**OLD, "uptime_s": 0.0, "generation": 8}]
    assert run(monkeypatch, {"ok": True, "message": "restarting in place"}, successors) == cli.EXIT_RUNTIME
    assert "restart.not_resumed" in capsys.readouterr().err
