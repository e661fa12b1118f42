"""Where the agent's log lines go: ha.cf's logfile/debugfile, syslog (logfacility), stderr, the journal.

Each event is written twice where it matters: Heartbeat's classic wording, because operators and their
scripts grep for "node server1: is dead" and "Late heartbeat", and a structured line
(`event=peer.dead node=server1 after_ms=5012`) for tools. Secrets never reach this module: the callers
log names and numbers only.

Under systemd (stderr is the journal's stream, JOURNAL_STREAM) every line also goes to stderr with a
`<N>` priority prefix and without the file's time/host/pid prefix, which journald records itself:
`journalctl -u hbvip` is where operators look first, whatever ha.cf's logfile says.
"""

from __future__ import annotations

import os
import sys
import syslog
import time
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing before the first heartbeat
if TYPE_CHECKING:
    from typing import IO

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}
_WORD = {"debug": "debug", "info": "info", "warning": "WARN", "error": "ERROR"}
_SYSLOG_LEVEL = {"debug": syslog.LOG_DEBUG, "info": syslog.LOG_INFO, "warning": syslog.LOG_WARNING,
                 "error": syslog.LOG_ERR}


def stderr_is_journal() -> bool:
    """True when systemd connected stderr to the journal: JOURNAL_STREAM names stderr's device:inode
    (a variable inherited by a child whose stderr was redirected elsewhere does not count)."""
    dev, _sep, ino = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(sys.stderr.fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (ValueError, OSError, AttributeError):
        return False


def _facility(name: str | None) -> int | None:
    if not name or name.lower() == "none":
        return None
    return getattr(syslog, "LOG_" + name.upper(), None)


class EventLog:
    """Append-only log sinks; files are reopened on `reopen()` (SIGHUP, after logrotate)."""

    def __init__(self, node: str, *, logfile: str | None = None, debugfile: str | None = None,
                 logfacility: str | None = None, stderr: bool = False, debug: bool = False) -> None:
        self.node = node
        self.pid = os.getpid()
        self.paths = (logfile, debugfile)
        self.debug = debug or bool(debugfile)
        self.journal = stderr_is_journal()
        self.stderr = stderr or self.journal
        self._files: list[tuple[IO[str], int]] = []
        self.facility = _facility(logfacility)
        if self.facility is not None:
            syslog.openlog("hbvip", syslog.LOG_PID, self.facility)
        self.reopen()

    def reopen(self) -> None:
        self.close()
        logfile, debugfile = self.paths
        for path, minimum in ((logfile, _LEVELS["info"]), (debugfile, _LEVELS["debug"])):
            if path:
                try:
                    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                    self._files.append((open(path, "a", encoding="utf-8", buffering=1), minimum))
                except OSError as exc:
                    print(f"hbvip: cannot open log file {path}: {exc.strerror}", file=sys.stderr)

    def close(self) -> None:
        for f, _unused in self._files:
            f.close()
        self._files = []

    def __call__(self, level: str, event: str, classic: str | None = None,
                 fields: dict[str, object] | None = None) -> None:
        rank = _LEVELS.get(level, 1)
        if rank == 0 and not self.debug:
            return
        stamp = time.strftime("%b %d %H:%M:%S")
        prefix = f"{stamp} {self.node} hbvip: [{self.pid}]: {_WORD.get(level, level)}: "
        structured = "event=" + event + "".join(f" {k}={_fmt(v)}" for k, v in (fields or {}).items())
        lines = ([classic] if classic else []) + [structured]
        for f, minimum in self._files:
            if rank >= minimum:
                f.write("".join(prefix + line + "\n" for line in lines))
        if self.stderr and rank >= 1:
            if self.journal:
                head = f"<{_SYSLOG_LEVEL.get(level, syslog.LOG_INFO)}>{_WORD.get(level, level)}: "
                sys.stderr.write("".join(head + line + "\n" for line in lines))
            else:
                sys.stderr.write("".join(prefix + line + "\n" for line in lines))
            sys.stderr.flush()
        if self.facility is not None and rank >= 1:
            for line in lines:
                syslog.syslog(_SYSLOG_LEVEL[level], line)


def _fmt(value: object) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text
