"""build() must lay out every message type exactly as Heartbeat 3.0.6 did in the captures."""
from __future__ import annotations

import pytest

from hbvip.wire import FT_BINARY, FT_STRING, Signer, build, control_fields, decode, encode
from tests.data.wire.vectors import SECRET, captured

SIGNER = Signer({1: ("sha1", SECRET)}, active=1)
CONTROL = {"t", "dest", "destuuid", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl", "auth"}


def _first_of_each_layout():
    """One captured datagram per (type, field names) layout, so each layout is one test case."""
    seen = {}
    for vector in captured():
        msg = decode(vector.payload, None)
        seen.setdefault((msg.type, tuple(f[1] for f in msg.fields)), vector)
    return list(seen.values())


@pytest.mark.parametrize("vector", _first_of_each_layout(), ids=lambda c: c.id)
def test_build_reproduces_the_captured_datagram(vector):
    msg = decode(vector.payload, SIGNER)
    body = [(name, value.decode() if ftype == FT_STRING else value)
            for ftype, name, value in msg.fields if name not in CONTROL]
    fields = build(msg.type, body, src=msg.src, srcuuid=msg.get_bytes("srcuuid"), seq=msg.seq,
                   hg=msg.hg, ts=msg.get_hex("ts"), ld=msg.get("ld"), ttl=msg.get_int("ttl"),
                   dest=msg.dest, destuuid=msg.get_bytes("destuuid"))
    assert encode(fields, SIGNER) == vector.payload


def test_the_captures_cover_every_addressed_layout():
    types = {decode(v.payload, None).type for v in _first_of_each_layout()}
    assert {"status", "NS_ackmsg", "NS_rexmit", "reqnodes", "repnodes", "ip-request-resp",
            "resource", "ask_resources", "shutdone", "starting", "stonith"} <= types


def test_repnodes_puts_dest_before_t_and_others_right_after_t():
    common = dict(src="server2", srcuuid=b"\x01" * 16, seq=4, hg=1, ts=2, ld="0.00 0.00 0.00 1/1 1")
    rep = build("repnodes", [("nodelist", "server1 server2 ")], dest="server1", destuuid=b"\x02" * 16, **common)
    req = build("reqnodes", [], dest="server1", destuuid=b"\x02" * 16, **common)
    assert [f[1] for f in rep][:4] == ["dest", "t", "nodelist", "destuuid"]
    assert [f[1] for f in req][:4] == ["t", "dest", "destuuid", "src"]


def test_ns_messages_carry_no_seq_and_no_ld_and_values_are_typed():
    fields = build("NS_ackmsg", [("ackseq", "1e")], src="server1", srcuuid=b"\x01" * 16, seq=None,
                   hg=0x6B073CE9, ts=0x6B073FBF, ld=None)
    assert [f[1] for f in fields] == ["t", "ackseq", "src", "srcuuid", "hg", "ts", "ttl"]
    assert fields[3] == (FT_BINARY, "srcuuid", b"\x01" * 16)
    assert (FT_STRING, "hg", b"6b073ce9") in fields and (FT_STRING, "ttl", b"3") in fields


def test_body_cannot_smuggle_control_fields():
    with pytest.raises(ValueError):
        build("status", [("seq", "1")], src="a", srcuuid=b"\x00" * 16, seq=1, hg=1, ts=1, ld=None)


def test_control_fields_follow_add_control_msg_fields_order():
    names = [f[1] for f in control_fields(src="s", srcuuid=b"\x00" * 16, seq=10, hg=1, ts=2, ld="x")]
    assert names == ["src", "srcuuid", "seq", "hg", "ts", "ld", "ttl"]
