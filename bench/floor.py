"""The floor under a Python heartbeat daemon: a process that only sends one UDP datagram per keepalive to
its peer and reads the peer's, on an asyncio loop (as `hbvip run`) or a bare `selectors` loop.

`python -m bench.footprint --floor` runs a pair of these on each lab host beside the contenders and measures
them the same way: what any Python agent pays per wake-up on this machine before it does any work, to weigh
an agent's CPU share against (keepalived, in C, pays less than this floor).

`python -m bench.floor asyncio|selector ADDRESS PEER PORT KEEPALIVE_S` is what runs on each host.
"""
from __future__ import annotations

import asyncio
import selectors
import socket
import sys
import time

#: About the size of a heartbeat datagram.
PAYLOAD = b"x" * 330


def _sockets(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((address, port))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setblocking(False)
    return rx, tx


def _read(rx: socket.socket, buffer: bytearray) -> None:
    try:
        rx.recv_into(buffer)
    except BlockingIOError:
        pass


def with_selector(rx: socket.socket, tx: socket.socket, peer: tuple[str, int], keepalive: float) -> None:
    selector = selectors.DefaultSelector()
    selector.register(rx, selectors.EVENT_READ)
    buffer = bytearray(65536)
    due = time.monotonic()
    while True:
        if time.monotonic() >= due:
            tx.sendto(PAYLOAD, peer)
            due += keepalive
        for _unused in selector.select(max(0.0, due - time.monotonic())):
            _read(rx, buffer)


async def with_asyncio(rx: socket.socket, tx: socket.socket, peer: tuple[str, int], keepalive: float) -> None:
    loop = asyncio.get_running_loop()
    buffer = bytearray(65536)
    loop.add_reader(rx, _read, rx, buffer)
    due = loop.time()

    def beat() -> None:
        nonlocal due
        tx.sendto(PAYLOAD, peer)
        due += keepalive
        loop.call_at(due, beat)

    loop.call_soon(beat)
    await loop.create_future()


def main(argv: list[str]) -> int:
    kind, address, peer, port, keepalive = argv[0], argv[1], argv[2], int(argv[3]), float(argv[4])
    rx, tx = _sockets(address, port)
    if kind == "selector":
        with_selector(rx, tx, (peer, port), keepalive)
    else:
        asyncio.run(with_asyncio(rx, tx, (peer, port), keepalive))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
