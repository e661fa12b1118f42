"""Restarting the agent in place, at the edge: the handover file and the exec of the new agent. What
the file says and when it may be continued is decided in `hbvip.cluster.inplace`.

The file (`Paths.restart_record`) lives in the run directory (/run/hbvip, root-only, gone at a reboot), is written 0600 and is
deleted by the first agent that reads it, whether it continues it or not: a record is used once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .cluster.inplace import RestartRecord, restart_record, resumed_peer

if TYPE_CHECKING:
    from .node import Node


def record_of(node: Node) -> RestartRecord:
    """The record for the successor of a node that is restarting in place (nothing is sent after this)."""
    groups = tuple(g.key for g in node.groups.groups(node.failover.held))
    return restart_record(node.failover, node.membership.peer, generation=node.link.generation, seq=node.link.seq,
                          now=node.clock.wall(), groups=groups, version=__version__)


def resume(node: Node, record: RestartRecord) -> None:
    """Continue the agent that wrote `record`: its view of the peer and of who holds what."""
    now = node.clock.monotonic()
    node.membership.peer = resumed_peer(record, now)
    node.apply(node.failover.resume(record, now))


def write_record(path: Path, record: RestartRecord) -> Path:
    """Write the record atomically, readable by root only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, record.to_json().encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def take_record(path: Path) -> tuple[RestartRecord | None, str | None]:
    """Read and delete the record: (record, None), or (None, why not). No file: (None, None)."""
    try:
        st = os.lstat(path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {path}: {exc}"
    finally:
        path.unlink(missing_ok=True)
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None, f"{path} is not this user's alone (owner {st.st_uid}, mode {st.st_mode & 0o777:o})"
    try:
        return RestartRecord.from_json(text), None
    except ValueError as exc:
        return None, f"{path}: {exc}"


def exec_agent() -> str:
    """Replace this process by a new agent with the same command line (same pid: the service manager
    sees no stop). Returns only when that fails, with the reason."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        os.execv(sys.executable, sys.orig_argv)
    except OSError as exc:
        return f"cannot run {sys.executable}: {exc.strerror}"
    return "exec returned"     # pragma: no cover - execv returns only by raising
