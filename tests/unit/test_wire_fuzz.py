"""decode() must never raise anything but WireError: a peer (or anyone on the segment) controls
every byte it reads, and one uncaught exception would take the receive loop down."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbvip.wire import REASONS, Message, Signer, WireError, decode, encode
from tests.data.wire.vectors import SECRET, captured

SIGNER = Signer({1: ("sha1", SECRET), 3: ("crc", b"")}, active=1)
SAMPLES = [c.payload for c in captured()[::20]]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_refuse(data: bytes) -> Message | None:
    try:
        return decode(data, SIGNER)
    except WireError as exc:
        assert exc.reason in REASONS
        return None


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_only_ever_give_wireerror(data):
    _decode_or_refuse(data)
    _decode_or_refuse(b"###\n" + data)


@FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_captured_datagrams_only_ever_give_wireerror(sample, data):
    buf = bytearray(sample)
    for _unused in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if action == "flip":
            buf[pos] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del buf[pos:pos + data.draw(st.integers(1, 8))]
        elif action == "insert":
            buf[pos:pos] = data.draw(st.sampled_from([b":", b",", b"%%%\n", b"(1)", b"=", b"9", b"\x00"]))
        else:
            del buf[pos:]
        if not buf:
            break
    _decode_or_refuse(bytes(buf))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([0, 1]),
                          st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="="),
                                  min_size=1, max_size=12)
                          .filter(lambda n: n not in ("auth", "seq", "hg", "ts", "ttl")),
                          st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" "))),
                max_size=12))
def test_any_encodable_message_round_trips(fields):
    msg = decode(encode(fields, SIGNER), SIGNER)
    assert msg.fields[:-1] == fields
