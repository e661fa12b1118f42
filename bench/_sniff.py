"""`python bench/_sniff.py IFACE SRC OUT`: log when the heartbeats of SRC first reach this host.

Run inside the peer's namespace (a separate process: it must live there). Logs `ready`, then one line
`<monotonic> <kind>` per IPv4 frame from SRC that is a heartbeat: UDP to port 694 (`udp`) or a VRRP
advert (`vrrp`, IP protocol 112). Stdlib only, run as a script, like lab/_agents.py. SIGTERM ends it.
"""
from __future__ import annotations

import select
import signal
import socket
import sys
import time

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
HEARTBEAT_PORT = 694
VRRP = 112
_stop = False


def _on_term(_sig: int, _frame: object) -> None:
    global _stop
    _stop = True


def sniff(iface: str, src: str, out: str) -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.bind((iface, ETH_P_IP))
    want = socket.inet_aton(src)
    with open(out, "w", buffering=1) as log:
        log.write("ready\n")
        while not _stop:
            if not select.select([sock], [], [], 0.2)[0]:
                continue
            frame, meta = sock.recvfrom(128)
            now = time.monotonic()
            if meta[2] == PACKET_OUTGOING or len(frame) < 34 or frame[26:30] != want:
                continue
            proto, ihl = frame[23], (frame[14] & 0x0F) * 4
            if proto == VRRP:
                log.write(f"{now:.6f} vrrp\n")
            elif proto == socket.IPPROTO_UDP and int.from_bytes(frame[14 + ihl + 2:14 + ihl + 4], "big") == HEARTBEAT_PORT:
                log.write(f"{now:.6f} udp\n")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    sniff(sys.argv[1], sys.argv[2], sys.argv[3])
