"""The root-only control socket (`/run/hbvip/control.sock`): one JSON request per line, one JSON answer.

Why a socket and not signals: `standby`/`takeover` must return when the move is *done*, with an answer,
and `status` must be the daemon's live view, not a file dumped on a signal. The socket file is 0600 and
every connection's peer credentials are checked (SO_PEERCRED), so only root can steer the pair.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from pathlib import Path
from typing import Any, Protocol

from .views import StatusView

SOCKET_NAME = "control.sock"
MAX_REQUEST = 4096


class Controlled(Protocol):
    """What the control server needs of the running node (`hbvip.node.Node`)."""

    def status(self) -> StatusView: ...

    async def request(self, kind: str, which: str, timeout: float) -> tuple[bool, str]: ...

    async def reload(self) -> tuple[bool, str]: ...

    def cleanup(self, group: str) -> tuple[bool, str]: ...

    def restart_in_place(self, check: bool) -> tuple[bool, str]: ...


class ControlServer:
    def __init__(self, agent: Controlled, run_dir: Path) -> None:
        self.agent = agent
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / SOCKET_NAME
        self.pidfile = self.run_dir / "hbvip.pid"
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.run_dir, 0o700)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._client, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.pidfile.write_text(f"{os.getpid()}\n")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for p in (self.path, self.pidfile):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            uid = _peer_uid(sock) if sock is not None else None
            if uid != 0 and uid != os.geteuid():
                await _answer(writer, {"ok": False, "error": "permission denied: the hbvip control socket is root-only"})
                return
            line = await asyncio.wait_for(reader.readline(), 5)
            if len(line) > MAX_REQUEST:
                await _answer(writer, {"ok": False, "error": "request too large"})
                return
            try:
                req = json.loads(line or b"{}")
                if not isinstance(req, dict):
                    raise ValueError
            except ValueError:
                await _answer(writer, {"ok": False, "error": "bad request: one JSON object per line"})
                return
            await _answer(writer, await self._handle(req))
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        if cmd == "status":
            return {"ok": True, "status": self.agent.status()}
        if cmd in ("standby", "takeover"):
            which = str(req.get("which", "all"))
            timeout = float(req.get("timeout", 60))
            ok, message = await self.agent.request(cmd, which, timeout)
            return {"ok": ok, "message": message, "status": self.agent.status()}
        if cmd == "reload":
            ok, message = await self.agent.reload()
            return {"ok": ok, "message": message}
        if cmd == "cleanup":
            ok, message = self.agent.cleanup(str(req.get("group", "")))
            return {"ok": ok, "message": message}
        if cmd == "restart-in-place":
            ok, message = self.agent.restart_in_place(bool(req.get("check")))
            return {"ok": ok, "message": message}
        return {"ok": False, "error": f"unknown command {cmd!r}: status, standby, takeover, reload, cleanup, "
                                      "restart-in-place"}


async def _answer(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(json.dumps(obj).encode() + b"\n")
    await writer.drain()


def _peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def call(run_dir: Path, request: dict[str, Any], timeout: float = 90.0) -> dict[str, Any]:
    """Client side, used by the CLI: send one request, wait for the answer."""
    path = Path(run_dir) / SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data or b"{}")
