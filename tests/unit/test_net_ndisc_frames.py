"""The IPv6 neighbour discovery frames byte for byte: what a client's kernel must accept to move its
neighbour entry (override flag, hop limit 255, ff02::1, target link-layer option, a valid checksum).

The expected frames were checked once with `tcpdump -vvv` ("icmp6 sum ok ... neighbor advertisement,
tgt is fd99:1::100, Flags [override]") and are kept here as bytes, so a change to any field fails.
"""

from __future__ import annotations

import socket

from hbvip.net.ndisc import _claims, icmpv6_checksum, na_frame, ns_probe_frame, solicited_node

MAC = bytes.fromhex("029900000001")
NA = bytes.fromhex(" ".join([
    "333300000001 029900000001 86dd",                                   # Ethernet: all-nodes MAC
    "60000000 0020 3a ff",                                               # IPv6: 32 bytes, ICMPv6, hop 255
    "fd990001000000000000000000000100 ff020000000000000000000000000001",  # VIP -> ff02::1
    "88 00 56d0 20000000",                                               # NA, checksum, override flag
    "fd990001000000000000000000000100 0201 029900000001",               # target, target lladdr option
]))
NS = bytes.fromhex(" ".join([
    "3333ff000100 029900000001 86dd",
    "60000000 0018 3a ff",
    "00000000000000000000000000000000 ff0200000000000000000001ff000100",  # :: -> solicited-node group
    "87 00 7b0d 00000000 fd990001000000000000000000000100",
]))


def test_unsolicited_na_frame_bytes() -> None:
    assert na_frame(MAC, "fd99:1::100") == NA
    assert len(NA) == 86


def test_neighbour_solicitation_probe_frame_bytes() -> None:
    assert ns_probe_frame(MAC, "fd99:1::100") == NS
    assert solicited_node(socket.inet_pton(socket.AF_INET6, "2001:db8::abcd:1234")) == \
        socket.inet_pton(socket.AF_INET6, "ff02::1:ffcd:1234")


def test_checksum_of_a_frame_with_its_checksum_is_zero() -> None:
    """The receiver's check (RFC 4443 2.3): summing the message with its checksum in place gives 0."""
    for frame in (NA, NS, na_frame(bytes.fromhex("02aabbccddee"), "2001:db8::1")):
        assert icmpv6_checksum(frame[22:38], frame[38:54], frame[54:]) == 0


def test_probe_counts_advertisements_and_foreign_dad_probes_only() -> None:
    target = socket.inet_pton(socket.AF_INET6, "fd99:1::100")
    other = na_frame(MAC, "fd99:1::101")
    assert _claims(NA, target)                     # someone advertises it
    assert _claims(NS, target)                     # someone else runs DAD for it (source ::)
    assert not _claims(other, target)              # another address
    assert not _claims(NA[:70], target)            # truncated
    normal_ns = NS[:22] + socket.inet_pton(socket.AF_INET6, "fd99:1::7") + NS[38:]
    assert not _claims(normal_ns, target)          # an ordinary resolution asks, it does not claim
