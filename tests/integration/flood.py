"""Send datagrams from a file at a fixed rate (stdlib only: it runs as a script in the client namespace).

  python flood.py FILE ADDR PORT RATE SECONDS

FILE holds length-prefixed datagrams (4-byte big-endian length, then the bytes); they are sent round
robin. Prints "sent=N errors=E seconds=S" when done. Sending is paced in 10 ms slots so the rate holds
without a busy loop per datagram.
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


def main(path: str, addr: str, port: str, rate: str, seconds: str) -> None:
    datagrams = load(path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    per_slot, slot = max(1, int(float(rate) * 0.01)), 0.01
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
    main(*sys.argv[1:6])
