"""The node identity files Heartbeat keeps in its state directory (``/var/lib/heartbeat``).

``hb_uuid`` (16 raw bytes, goes on the wire as ``srcuuid``) and ``hb_generation`` (the ``hg``
field, bumped at every start so that peers can tell a restart from a replay) are read and
written in Heartbeat's own formats, so a node can switch between Heartbeat and hbvip and keep
its identity. ``hb_uuid.hbvip-host`` is ours alone: it remembers the hostname the uuid was made
under, so a renamed node can say why its peer does not recognise it.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

UUID_FILE = "hb_uuid"
GENERATION_FILE = "hb_generation"
UUID_HOST_FILE = "hb_uuid.hbvip-host"
_GENERATION = re.compile(rb" *([0-9]{1,19})\n?")


def _write_durably(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` so that after a crash ``path`` holds either the old or the new content.

    Temp file + fsync + rename + fsync of the directory: the generation must never go back after
    a power loss, or peers would drop our messages as replays.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_SYNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create_uuid(state_dir: Path) -> tuple[bytes, bool]:
    """This node's 16-byte uuid, and whether it was created now (a fresh random version-4 uuid)."""
    path = Path(state_dir) / UUID_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        import uuid  # pylint: disable=import-outside-toplevel  # once per node's life; 0.6 MB of RSS at module level

        path.parent.mkdir(parents=True, exist_ok=True)
        data = uuid.uuid4().bytes
        _write_durably(path, data)
        return data, True
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the node uuid: {exc.strerror}") from exc
    if len(data) != 16:
        raise ValueError(f"{path}: holds {len(data)} bytes, a node uuid is 16 raw bytes — "
                         f"delete the file to generate a new uuid (the peer will see a new node)")
    return data, False


def format_generation(generation: int) -> bytes:
    """Heartbeat's ``hb_generation`` content: right-aligned in 15 columns plus a newline."""
    return b"%15d\n" % generation


def increment_generation(state_dir: Path, now: float | None = None) -> int:
    """Bump and persist the heartbeat generation for this start; return the new value.

    A missing file starts at ``time + 1`` as Heartbeat does ("No Previous generation"), which
    stays above any generation this node could have used before the file was lost.
    """
    path = Path(state_dir) / GENERATION_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        generation = int(time.time() if now is None else now) + 1
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the heartbeat generation: {exc.strerror}") from exc
    else:
        match = _GENERATION.fullmatch(data)
        if match is None:
            raise ValueError(f"{path}: not a heartbeat generation (expected a decimal number, "
                             f"got {data[:40]!r}) — fix or delete the file")
        generation = int(match.group(1)) + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_durably(path, format_generation(generation))
    return generation


def current_generation(state_dir: Path) -> int | None:
    """The generation this node's running (or last) agent uses, or None when the file is missing or bad."""
    try:
        match = _GENERATION.fullmatch((Path(state_dir) / GENERATION_FILE).read_bytes())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def record_uuid_host(state_dir: Path, hostname: str) -> None:
    """Remember the hostname ``hb_uuid`` belongs to (Heartbeat never reads this file)."""
    _write_durably(Path(state_dir) / UUID_HOST_FILE, hostname.encode() + b"\n")


def uuid_host(state_dir: Path) -> str | None:
    """The hostname recorded for ``hb_uuid``, or None when none was recorded."""
    try:
        text = (Path(state_dir) / UUID_HOST_FILE).read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    return text or None
