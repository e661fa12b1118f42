"""Send datagrams from a file at a fixed rate (stdlib only: it runs as a script in the client namespace).

  python flood.py FILE ADDR PORT RATE SECONDS [SRC_ADDR:SRC_PORT]

FILE holds length-prefixed datagrams (4-byte big-endian length, then the bytes); they are sent round
robin, from SRC_ADDR:SRC_PORT when given (an address the sending namespace holds, e.g. a dead node's).
Prints "sent=N errors=E seconds=S" when done. Sending is paced in slots of at least 10 ms so the rate
holds without a busy loop per datagram.
"""
from __future__ import annotations

import socket
import struct
import sys
import time


def load(path: str) -> list[bytes]:
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out


def main(path: str, addr: str, port: str, rate: str, seconds: str, source: str | None = None) -> None:
    datagrams = load(path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    if source:
        src_addr, src_port = source.rsplit(":", 1)
        sock.bind((src_addr, int(src_port)))
    per_slot = max(1, int(float(rate) * 0.01))
    slot = per_slot / float(rate)
    sent = errors = i = 0
    start = time.monotonic()
    end = start + float(seconds)
    next_slot = start
    while time.monotonic() < end:
        for _unused in range(per_slot):
            try:
                sock.sendto(datagrams[i % len(datagrams)], (addr, int(port)))
                sent += 1
            except OSError:
                errors += 1
            i += 1
        next_slot += slot
        delay = next_slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(f"sent={sent} errors={errors} seconds={time.monotonic() - start:.2f}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:7])
