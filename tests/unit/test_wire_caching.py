"""The codec's caches change nothing a peer sees: same bytes out, same refusals, bounded memory."""

from __future__ import annotations

import pytest

from hbvip.wire import FT_STRING, Signer, WireError, build, decode, encode
from hbvip.wire import codec

SIGNER = Signer({1: ("sha1", b"labsecret-0123")}, 1)
UUID = bytes(range(16))


def status(seq: int, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    return encode(build("status", (("st", "active"), *extra), src="server1", srcuuid=UUID, seq=seq, hg=5,
                        ts=1, ld="0.00 0.00 0.00 1/1 1"), SIGNER)


def test_repeated_heartbeats_encode_and_decode_the_same_as_the_first() -> None:
    first = status(1)
    again = [status(1) for _unused in range(3)]
    assert again == [first] * 3
    msg = decode(first, SIGNER)
    assert (msg.type, msg.get("st"), msg.seq, msg.get_bytes("srcuuid")) == ("status", "active", 1, UUID)


def test_a_field_that_cannot_be_sent_is_refused_every_time() -> None:
    for _unused in range(2):
        with pytest.raises(ValueError):
            encode([(FT_STRING, "bad name", b"x")], SIGNER)
        with pytest.raises(ValueError):
            encode([(FT_STRING, "info", b"two\nlines")], SIGNER)


def test_a_flood_of_distinct_fields_keeps_the_parse_cache_bounded() -> None:
    for n in range(3 * codec._FIELD_CACHE_SIZE // 4):
        decode(status(n + 1, ((f"x{n}", "1"), (f"y{n}", "2"))), SIGNER)
        assert len(codec._parsed_fields) <= codec._FIELD_CACHE_SIZE


def test_a_malformed_field_is_refused_even_after_good_ones_were_cached() -> None:
    good = status(7)
    decode(good, SIGNER)
    bad = good.replace(b"(0)st=active", b"(9)st=active")
    with pytest.raises(WireError) as info:
        decode(bad, None)
    assert info.value.reason == "malformed"


def test_a_known_start_decodes_to_the_same_fields_as_a_full_parse() -> None:
    """The parsed start of a recent datagram is reused only for a datagram with those very bytes: what
    follows (and any other start) is parsed from the bytes themselves."""
    codec._prefixes.clear()
    full = [decode(status(n), SIGNER).fields for n in (1, 2)]
    codec._prefixes.clear()
    decode(status(1), SIGNER)                          # the start is known from here on
    assert len(codec._prefixes) == 1
    assert decode(status(2), SIGNER).fields == full[1]
    changed = decode(status(3, (("info", "x"),)), SIGNER)      # another start: parsed, then known too
    assert changed.get("info") == "x" and changed.get("st") == "active" and changed.seq == 3
    assert len(codec._prefixes) == 2


def test_the_stable_start_ends_where_the_sequence_fields_begin() -> None:
    data = status(7)
    msg = decode(data, SIGNER)
    assert data[msg.stable_len:].startswith(b"8:(0)seq=7,")
    assert b"st=active" in data[:msg.stable_len] and b"srcuuid" in data[:msg.stable_len]
    assert decode(data, SIGNER).stable_len == msg.stable_len          # the same from a known start


def test_a_flood_of_distinct_starts_keeps_the_known_starts_bounded() -> None:
    for n in range(50):
        decode(status(n + 1, ((f"x{n}", "1"),)), SIGNER)
    assert len(codec._prefixes) <= codec._PREFIXES
