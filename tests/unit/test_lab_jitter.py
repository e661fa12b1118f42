"""lab/jitter.py's frame selection and checksum: which frames the emulator delays, and that a re-sent
frame carries a UDP checksum a receiver accepts (a tapped veth frame may hold a partial one)."""
from __future__ import annotations

import struct

from lab.jitter import delayed_udp

SRC, DST = bytes([10, 99, 1, 1]), bytes([10, 99, 1, 2])


def frame(dport: int = 694, *, proto: int = 17, frag: int = 0, payload: bytes = b"t=status\nts=6543\n",
          ethertype: int = 0x0800, checksum: int = 0x1234) -> bytes:
    udp = struct.pack("!HHHH", 694, dport, 8 + len(payload), checksum) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, frag, 64, proto, 0, SRC, DST)
    eth = bytes.fromhex("029901000002029901000001") + struct.pack("!H", ethertype)
    return eth + ip + udp + b"\0" * 6                     # Ethernet padding must not enter the sum


def ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_the_rewritten_checksum_verifies_like_a_receiver_checks_it() -> None:
    for payload in (b"t=status\nts=6543\n", b"odd", b""):
        out = delayed_udp(frame(payload=payload), 694)
        assert out is not None and len(out) == len(frame(payload=payload))
        segment = out[34:34 + 8 + len(payload)]
        pseudo = SRC + DST + struct.pack("!BBH", 0, 17, len(segment))
        assert ones_complement_sum(pseudo + segment) == 0xFFFF
        assert out[:40] == frame(payload=payload)[:40] and out[42:] == frame(payload=payload)[42:]


def test_only_udp_to_the_port_in_an_unfragmented_or_first_fragment_is_delayed() -> None:
    assert delayed_udp(frame(dport=5405), 694) is None
    assert delayed_udp(frame(proto=6), 694) is None
    assert delayed_udp(frame(ethertype=0x0806), 694) is None
    assert delayed_udp(frame(frag=100), 694) is None                 # later fragment: no UDP header
    first = frame(frag=0x2000)                                       # more fragments follow
    assert delayed_udp(first, 694) == first                          # its checksum covers all of them
