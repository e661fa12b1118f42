"""A heartbeat port that cannot be bound stops the agent with the fix in one line, not a traceback."""
from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from hbvip.net.transport import Transport, TransportError


def test_port_in_use_names_the_other_daemon_and_udpport() -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    transport = Transport(port, [], lambda data, addr: None)
    try:
        with pytest.raises(TransportError) as info:
            asyncio.run(transport.start())
    finally:
        transport.close()
        holder.close()
    assert f"cannot listen on UDP {port}" in str(info.value)
    assert "udpport" in str(info.value) and info.value.__cause__.errno == errno.EADDRINUSE
