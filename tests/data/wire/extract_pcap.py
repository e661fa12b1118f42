"""Turn the lab's Heartbeat captures into the committed test vectors (``vectors.json``).

Why a helper and not a test: tests must not read ``/work/shared`` at run time, so the UDP/694
payloads are extracted once, by this small pure-Python reader of the classic pcap format, and the
result is committed. Re-run it when a capture changes::

    python tests/data/wire/extract_pcap.py /work/shared/heartbeat-3.0.6/hb-wire.pcap \
        /work/shared/heartbeat-3.0.6/fast-timings.pcap > tests/data/wire/vectors.json
"""
from __future__ import annotations

import json
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

_LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_VLAN = 0x8100
_IPPROTO_UDP = 17


def _records(data: bytes) -> Iterator[tuple[float, bytes]]:
    """Yield (timestamp, frame) from a classic pcap file of either byte order and resolution."""
    magic = data[:4]
    formats = {
        b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
        b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
    }
    if magic not in formats:
        raise ValueError("not a classic pcap file")
    order, unit = formats[magic]
    linktype = struct.unpack_from(order + "I", data, 20)[0]
    if linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"unsupported link type {linktype}")
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(order + "IIII", data, offset)
        offset += 16
        yield sec + frac * unit, data[offset:offset + incl]
        offset += incl


def udp_payloads(path: Path, port: int = 694) -> Iterator[dict[str, object]]:
    """Yield every IPv4 UDP datagram to or from ``port`` as a JSON-ready dict."""
    for stamp, frame in _records(path.read_bytes()):
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        ip = 14
        if ethertype == _ETHERTYPE_VLAN:
            ethertype = struct.unpack_from("!H", frame, 16)[0]
            ip = 18
        if ethertype != _ETHERTYPE_IPV4 or frame[ip + 9] != _IPPROTO_UDP:
            continue
        udp = ip + (frame[ip] & 0x0F) * 4
        sport, dport, length = struct.unpack_from("!HHH", frame, udp)
        if port not in (sport, dport):
            continue
        yield {
            "time": round(stamp, 6),
            "src": socket.inet_ntoa(frame[ip + 12:ip + 16]),
            "dst": socket.inet_ntoa(frame[ip + 16:ip + 20]),
            "payload": frame[udp + 8:udp + length].hex(),
        }


def main(paths: list[str]) -> None:
    """Print the vectors of every capture named on the command line as one JSON document."""
    out = {Path(p).name: list(udp_payloads(Path(p))) for p in paths}
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
