"""ResourceRunner with real shell scripts in a temporary config dir (no network: script resources only).

Each script appends `<name> <args...> <action>` to calls.log, exactly like the seed's failback.sh logger,
so the tests read the order in which Heartbeat semantics require the calls to happen.
"""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

import pytest

from hbvip.config import parse_haresources
from hbvip.resources import runner as runner_module
from hbvip.resources.runner import ResourceRunner
from hbvip.resources.scripts import says_running


class Lab:
    def __init__(self, root: Path) -> None:
        self.config_dir = root / "ha.d"
        self.init_dir = root / "init.d"
        self.calls_log = root / "calls.log"
        (self.config_dir / "resource.d").mkdir(parents=True)
        self.init_dir.mkdir()
        self.events: list[tuple[str, dict]] = []

    def script(self, name: str, body: str = "", *, directory: Path | None = None) -> Path:
        """A script that logs its call, then runs `body` (which may look at $action)."""
        path = (directory or self.config_dir / "resource.d") / name
        path.write_text(
            "#!/bin/sh\n"
            'eval action=\\${$#}\n'
            f'echo "{name} $*" >> {self.calls_log}\n'
            f"{body}\n"
            "exit 0\n"
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return path

    def calls(self) -> list[str]:
        return self.calls_log.read_text().splitlines() if self.calls_log.exists() else []

    def group(self, line: str):
        groups, problems = parse_haresources(line + "\n", "haresources")
        assert not problems
        return groups[0]

    def runner(self, **kwargs) -> ResourceRunner:
        kwargs.setdefault("script_timeout", 5.0)
        return ResourceRunner(
            self.config_dir, init_dir=self.init_dir, log=lambda e, f: self.events.append((e, f)), **kwargs
        )


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "STOP_RETRY_DELAY", 0.01)


@pytest.mark.parametrize(
    "output, running",
    [
        ("", False),                                  # the seed's `exit 0` stub: always started
        ("running", True),
        ("apache is running (pid 42)", True),
        ("Running", True),
        ("OK", True),
        ("status: OK\n", True),
        ("ok", False),                                # Heartbeat's match on OK is case-sensitive
        ("apache is not running", False),
        ("NOT running", False),
        ("Not really Running", False),
        ("stopped", False),
        ("knot running", False),                      # a substring match, as the shell `case` does
        ("not yet\nrunning soon", False),              # the shell's `*` spans lines
        ("stdout says running\n", True),
    ],
)
def test_status_verdict_follows_heartbeats_output_rule(output: str, running: bool) -> None:
    assert says_running(output) is running


def test_status_decides_from_printed_output_not_exit_code(lab: Lab) -> None:
    lab.script("says_running_rc3.sh", 'echo "daemon is running"; exit 3')
    lab.script("silent_rc0.sh", "exit 0")
    lab.script("not_running_rc0.sh", 'echo "daemon is not running"; exit 0')
    lab.script("stderr_only.sh", 'echo running >&2')
    runner = lab.runner()
    group = lab.group("server1 says_running_rc3.sh silent_rc0.sh not_running_rc0.sh stderr_only.sh")
    verdicts = [asyncio.run(runner.status(res)) for res in group.resources]
    assert verdicts == [True, False, False, False]


def test_acquire_runs_status_then_start_left_to_right(lab: Lab) -> None:
    lab.script("first.sh")
    lab.script("failback.sh")
    result = asyncio.run(lab.runner().acquire(lab.group("server1 first.sh failback.sh")))
    assert result.ok and result.failed is None
    assert lab.calls() == ["first.sh status", "first.sh start", "failback.sh status", "failback.sh start"]


def test_acquire_does_not_start_a_resource_whose_status_says_running(lab: Lab) -> None:
    lab.script("db.sh", '[ "$action" = status ] && echo "db is running"')
    lab.script("web.sh", '[ "$action" = status ] && echo "web is not running"')
    result = asyncio.run(lab.runner().acquire(lab.group("server1 db.sh web.sh")))
    assert result.ok
    assert lab.calls() == ["db.sh status", "web.sh status", "web.sh start"]


def test_release_stops_right_to_left_only(lab: Lab) -> None:
    for name in ("a.sh", "b.sh", "c.sh"):
        lab.script(name)
    result = asyncio.run(lab.runner().release(lab.group("server1 a.sh b.sh c.sh")))
    assert result.ok and result.failed == []
    assert lab.calls() == ["c.sh stop", "b.sh stop", "a.sh stop"]


def test_resource_args_come_before_the_action(lab: Lab) -> None:
    lab.script("svc.sh")
    asyncio.run(lab.runner().acquire(lab.group("server1 svc.sh::alpha::two_words")))
    assert lab.calls() == ["svc.sh alpha two_words status", "svc.sh alpha two_words start"]


def test_init_dir_script_is_used_when_resource_d_has_none(lab: Lab) -> None:
    lab.script("legacy", directory=lab.init_dir)
    assert asyncio.run(lab.runner().acquire(lab.group("server1 legacy"))).ok
    assert lab.calls() == ["legacy status", "legacy start"]


def test_scripts_run_in_a_contained_environment(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "env.txt"
    lab.script("env.sh", f'{{ pwd; echo "PATH=$PATH"; echo "LANG=$LANG"; echo "SECRET=$HBVIP_TEST_SECRET"; cat; }} > {out} 2>&1')
    monkeypatch.setenv("HBVIP_TEST_SECRET", "leak")
    asyncio.run(lab.runner().status(lab.group("server1 env.sh").resources[0]))
    cwd, path, lang, secret = out.read_text().splitlines()  # `cat` read nothing: stdin is /dev/null
    assert cwd == "/" and "/usr/bin" in path and lang == "LANG=C"
    assert secret == "SECRET=", "the agent's environment must not reach operator scripts"


def test_failed_start_releases_what_was_acquired_right_to_left(lab: Lab) -> None:
    lab.script("a.sh")
    lab.script("b.sh")
    lab.script("broken.sh", '[ "$action" = start ] && { echo "port in use" >&2; exit 1; }; exit 0')
    lab.script("never.sh")
    runner = lab.runner()
    result = asyncio.run(runner.acquire(lab.group("server1 a.sh b.sh broken.sh never.sh")))
    assert not result.ok
    assert result.failed is not None and (result.failed.resource, result.failed.action, result.failed.rc) == (
        "broken.sh", "start", 1)
    assert "port in use" in result.failed.stderr
    assert lab.calls() == [
        "a.sh status", "a.sh start", "b.sh status", "b.sh start", "broken.sh status", "broken.sh start",
        "broken.sh stop", "b.sh stop", "a.sh stop",
    ]
    assert runner.counters["script_failures"] == 1


def test_missing_script_fails_the_start(lab: Lab) -> None:
    lab.script("a.sh")
    result = asyncio.run(lab.runner().acquire(lab.group("server1 a.sh ghost.sh")))
    assert not result.ok and result.failed.resource == "ghost.sh" and result.failed.rc is None
    assert lab.calls() == ["a.sh status", "a.sh start", "a.sh stop"]


def test_failed_stop_is_retried_reported_and_release_goes_on(lab: Lab) -> None:
    lab.script("first.sh")
    lab.script("stuck.sh", '[ "$action" = stop ] && exit 1; exit 0')
    runner = lab.runner()
    result = asyncio.run(runner.release(lab.group("server1 first.sh stuck.sh")))
    assert not result.ok
    assert [(c.resource, c.rc) for c in result.failed] == [("stuck.sh", 1)]
    assert lab.calls() == ["stuck.sh stop"] * 3 + ["first.sh stop"]
    assert runner.counters["script_failures"] == 3


def test_stop_that_recovers_on_retry_counts_as_released(lab: Lab, tmp_path: Path) -> None:
    marker = tmp_path / "failed_once"
    lab.script("flaky.sh", f'[ -e {marker} ] && exit 0; touch {marker}; exit 1')
    result = asyncio.run(lab.runner().release(lab.group("server1 flaky.sh")))
    assert result.ok
    assert lab.calls() == ["flaky.sh stop", "flaky.sh stop"]


def test_timed_out_script_and_its_children_are_killed(lab: Lab, tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    # The script ignores SIGTERM and leaves a child behind: the group SIGKILL must get both.
    lab.script("hang.sh", f"[ $action = start ] || exit 0; trap '' TERM; sleep 60 & echo $! > {child_pid}; wait")
    runner = lab.runner(script_timeout=0.5)
    started = time.monotonic()
    result = asyncio.run(runner.acquire(lab.group("server1 hang.sh")))
    elapsed = time.monotonic() - started
    assert not result.ok and result.failed.timed_out and result.failed.rc is None
    assert elapsed < 0.5 + 2 + 1  # the script timeout plus the SIGTERM->SIGKILL grace
    assert runner.counters["script_timeouts"] == 1
    assert lab.calls() == ["hang.sh status", "hang.sh start", "hang.sh stop"]
    pid = int(child_pid.read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_each_call_is_logged_as_an_event_and_kept_in_history(lab: Lab) -> None:
    lab.script("failback.sh")
    runner = lab.runner()
    asyncio.run(runner.acquire(lab.group("server1 failback.sh")))
    calls = [f for e, f in lab.events if e == "resource.call"]
    assert [(f["name"], f["action"], f["rc"]) for f in calls] == [
        ("failback.sh", "status", 0), ("failback.sh", "start", 0)]
    assert all(isinstance(f["ms"], int) for f in calls)
    assert [(c.resource, c.action) for c in runner.calls] == [("failback.sh", "status"), ("failback.sh", "start")]
    assert runner.counters["script_runs"] == 2
