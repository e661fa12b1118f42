"""systemd's notify protocol (`Type=notify`), by hand: one datagram, no library needed."""

from __future__ import annotations

import os
import socket


def sd_notify(message: str) -> None:
    """Tell systemd `message` (e.g. `READY=1`); a no-op when not started by systemd with NOTIFY_SOCKET."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
            s.sendall(message.encode())
    except OSError:
        pass
