"""Gratuitous ARP frames byte-for-byte as Heartbeat 3.0.6's send_arp put them on the wire.

The expected bytes are two frames captured from a real Heartbeat pair taking VIP 10.99.0.100
(request first, then reply, both to ff:ff:ff:ff:ff:ff).
"""

from __future__ import annotations

from hbvip.net.garp import ARPOP_REPLY, ARPOP_REQUEST, arp_frame, probe_frame

MAC = bytes.fromhex("029900000001")
HEARTBEAT_REQUEST = bytes.fromhex(
    "ffffffffffff029900000001080600010800060400010299000000010a6300640000000000000a630064")
HEARTBEAT_REPLY = bytes.fromhex(
    "ffffffffffff029900000001080600010800060400020299000000010a6300640299000000010a630064")


def test_request_frame_matches_heartbeat_send_arp() -> None:
    assert arp_frame(MAC, "10.99.0.100", ARPOP_REQUEST) == HEARTBEAT_REQUEST


def test_reply_frame_matches_heartbeat_send_arp() -> None:
    assert arp_frame(MAC, "10.99.0.100", ARPOP_REPLY) == HEARTBEAT_REPLY


def test_probe_frame_is_an_rfc5227_probe_that_no_cache_learns_from() -> None:
    """check-config's probe: who-has 10.99.0.100, sender IP 0.0.0.0 and target MAC zero (RFC 5227 2.1.1)."""
    assert probe_frame(MAC, "10.99.0.100") == bytes.fromhex("".join((
        "ffffffffffff", "029900000001", "0806",          # to everyone, from us, ARP
        "0001", "0800", "06", "04", "0001",              # Ethernet/IPv4, request
        "029900000001", "00000000",                      # sender: our MAC, IP 0.0.0.0
        "000000000000", "0a630064",                      # target: unknown MAC, 10.99.0.100
    )))
