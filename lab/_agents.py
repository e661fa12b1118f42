"""Tiny measuring programs the lab runs inside its namespaces (stdlib only, run as a script).

  respond PORT NAME          UDP responder: answers every datagram with "<payload> <NAME>"
  respond6 PORT NAME         the same on IPv6 (the prober picks the family from its ADDR)
  probe ADDR PORT INTERVAL OUT   sends a numbered datagram every INTERVAL s; logs sends and answers
  arpwatch IFACE OUT         AF_PACKET sniffer: logs every ARP frame arriving on IFACE

They are separate processes (not threads of the test) because they must live in another network
namespace. Output files are line-oriented and flushed per line, so the lab can read them at any time.
SIGTERM ends them; the prober then waits a moment for answers still in flight.
"""
from __future__ import annotations

import select
import signal
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806
PACKET_OUTGOING = 4
_stop = False


def _on_term(_sig: int, _frame: object) -> None:
    global _stop
    _stop = True


def respond(port: int, name: str, family: socket.AddressFamily = socket.AF_INET) -> None:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    tag = b" " + name.encode()
    while not _stop:
        if select.select([sock], [], [], 0.2)[0]:
            data, peer = sock.recvfrom(512)
            try:
                sock.sendto(data[:64] + tag, peer)
            except OSError:
                pass  # a powered-off host (link down) answers nothing, and the responder lives on


def probe(addr: str, port: int, interval: float, out: str) -> None:
    sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    with open(out, "w", buffering=1) as log:
        log.write("ready\n")
        seq = 0
        next_send = time.monotonic()
        drain_until: float | None = None
        while drain_until is None or time.monotonic() < drain_until:
            now = time.monotonic()
            if _stop and drain_until is None:
                drain_until = now + 0.3
            if drain_until is None and now >= next_send:
                try:
                    sock.sendto(str(seq).encode(), (addr, port))
                except OSError:
                    pass  # no route while links are down: it simply counts as lost
                log.write(f"S {seq} {now:.6f}\n")
                seq += 1
                next_send += interval
                if next_send < now:  # we were descheduled; do not burst to catch up
                    next_send = now + interval
            wait = max(0.0, min(next_send - time.monotonic(), 0.05))
            if select.select([sock], [], [], wait)[0]:
                while True:
                    try:
                        data = sock.recv(512)
                    except BlockingIOError:
                        break
                    parts = data.decode(errors="replace").split()
                    if len(parts) == 2 and parts[0].isdigit():
                        log.write(f"R {parts[0]} {parts[1]} {time.monotonic():.6f}\n")


def arpwatch(iface: str, out: str) -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sock.bind((iface, ETH_P_ARP))
    with open(out, "w", buffering=1) as log:
        log.write("ready\n")
        while not _stop:
            if not select.select([sock], [], [], 0.2)[0]:
                continue
            frame, meta = sock.recvfrom(2048)
            now = time.monotonic()
            if meta[2] == PACKET_OUTGOING or len(frame) < 42:
                continue
            op, smac, sip, _tmac, tip = struct.unpack("!6xH6s4s6s4s", frame[14:42])
            log.write(
                f"{now:.6f} {op} {smac.hex(':')} {socket.inet_ntoa(sip)} {socket.inet_ntoa(tip)}\n"
            )


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    mode, args = argv[0], argv[1:]
    if mode == "respond":
        respond(int(args[0]), args[1])
    elif mode == "respond6":
        respond(int(args[0]), args[1], socket.AF_INET6)
    elif mode == "probe":
        probe(args[0], int(args[1]), float(args[2]), args[3])
    elif mode == "arpwatch":
        arpwatch(args[0], args[1])
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
