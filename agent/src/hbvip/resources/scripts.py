"""Run one resource script action with a deadline, and decide "running" from what it prints.

Scripts are the operator's code, so they are contained: own process group (a timeout kills the script
and whatever it forked, and nothing else), stdin from /dev/null, cwd /, a fixed PATH and LANG=C (the
status rule reads English words). Output goes to anonymous temp files rather than pipes so that a
daemon an init script leaves behind, still holding stdout, can neither stall the call nor die of
SIGPIPE later.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from typing import BinaryIO

from ..records import dataclass

SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out script's group
MAX_OUTPUT = 64 * 1024

# ResourceManager's we_own_resource(): `case $(script args status) in *[Nn][Oo][Tt]\ *[Rr]unning*) stopped;
# *[Rr]unning*|*OK*) running; *) stopped`. The exit code is ignored, and so is stderr.
_NOT_RUNNING = re.compile(r"[Nn][Oo][Tt] .*[Rr]unning", re.DOTALL)
_RUNNING = re.compile(r"[Rr]unning|OK")


def says_running(output: str) -> bool:
    """Heartbeat's verdict on a `status` call's standard output."""
    if _NOT_RUNNING.search(output):
        return False
    return bool(_RUNNING.search(output))


@dataclass(frozen=True)
class ScriptCall:
    """One resource action as it happened: what ran, how it ended, what it printed."""

    resource: str
    action: str
    rc: int | None
    output: str
    duration: float
    timed_out: bool
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


async def run_script(
    path: Path, resource: str, args: tuple[str, ...], action: str, *, timeout: float, env: dict[str, str]
) -> ScriptCall:
    """Run `path arg1 arg2 ... action` (Heartbeat passes resource args before the action)."""
    started = time.monotonic()
    with _capture() as out, _capture() as err:
        try:
            proc = await asyncio.create_subprocess_exec(
                str(path), *args, action,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err,
                cwd="/", env=env, start_new_session=True,
            )
        except OSError as exc:
            return ScriptCall(resource, action, None, "", time.monotonic() - started, False, f"cannot run {path}: {exc}")
        timed_out = False
        try:
            rc: int | None = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
            await _kill_group(proc)
            rc = None
        except BaseException:  # cancelled: do not leave the operator's script running unattended
            await _kill_group(proc)
            raise
        return ScriptCall(
            resource, action, rc, _read(out), time.monotonic() - started, timed_out, _read(err)
        )


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the script's process group, SIGKILL it after a grace period; reap the script."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_GRACE)
    except TimeoutError:
        pass
    _signal_group(proc.pid, signal.SIGKILL)  # also stragglers that outlived the leader
    await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _capture() -> BinaryIO:
    """An anonymous in-memory file for a script's output (like tempfile.TemporaryFile, without importing
    tempfile and what it imports into every agent's start-up)."""
    return open(os.memfd_create("hbvip-script", os.MFD_CLOEXEC), "w+b")  # pylint: disable=consider-using-with


def _read(file: BinaryIO) -> str:
    file.seek(0)
    return file.read(MAX_OUTPUT).decode(errors="replace")
