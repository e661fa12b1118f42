"""Golden-byte tests of the netstring codec against Heartbeat 3.0.6's own datagrams."""
from __future__ import annotations

import pytest

from hbvip.wire import (
    FT_BINARY,
    FT_STRING,
    Message,
    Signer,
    WireError,
    auth_field_problem,
    classic_rendering,
    decode,
    encode,
    hex_field,
    trailer_problem,
)
from tests.data.wire.vectors import SECRET, captured

SIGNER = Signer({1: ("sha1", SECRET)}, active=1)
WRONG = Signer({1: ("sha1", b"labsecret-0124")}, active=1)
SERVER1_UUID = b"\xfd-\xebY\xecMA\xb4\x87\xed\xf4\xfe\xedp\x1e\xfd"
CAPTURED = captured()

# heartbeat-wire.md §7.1, verbatim (steady-state status, server1 -> server2, 313 bytes).
STATUS = (
    b"###\n"
    b"11:(0)t=status,"
    b"12:(0)st=active,"
    b"10:(0)dt=1388,"
    b"13:(0)protocol=1,"
    b"14:(0)src=server1,"
    b"27:(1)srcuuid=\xfd-\xebY\xecMA\xb4\x87\xed\xf4\xfe\xedp\x1e\xfd,"
    b"9:(0)seq=1e,"
    b"14:(0)hg=6b073ce9,"
    b"14:(0)ts=6b073fbf,"
    b"31:(0)ld=0.32 0.18 0.09 1/98 23722,"
    b"8:(0)ttl=3,"
    b"50:(0)auth=1 8da830dd8202986a21a30cfc0b49e820e1ea1035,"
    b"%%%\n"
    b"42:1 5648d633c3e5954e28b88183a54d57dfc6afca92,"
)
# §7.2, NS_rexmit in the loss phase (no seq, no ld; dest and destuuid; decimal firstseq).
REXMIT = (
    b"###\n"
    b"14:(0)t=NS_rexmit,"
    b"15:(0)dest=server1,"
    b"14:(0)firstseq=35,"
    b"13:(0)lastseq=35,"
    b"28:(1)destuuid=\xfd-\xebY\xecMA\xb4\x87\xed\xf4\xfe\xedp\x1e\xfd,"
    b"14:(0)src=server2,"
    b"27:(1)srcuuid=\xd8\xc8\xa0^)\xeaI\xfb\x8bTRA\xa1c9.,"
    b"14:(0)hg=6b073cde,"
    b"14:(0)ts=6b073fc6,"
    b"8:(0)ttl=3,"
    b"50:(0)auth=1 d3889db161e89ae70a8d159743dd3a66bd77c21c,"
    b"%%%\n"
    b"42:1 5ec10536a749fbf4463f7f5c85d2e08cbfec19f8,"
)


def _without_auth(message: Message) -> list:
    return [f for f in message.fields if f[1] != "auth"]


def test_documented_status_datagram_decodes_to_its_fields():
    msg = decode(STATUS, SIGNER)
    assert len(STATUS) == 313
    assert [name for _t, name, _v in msg.fields] == [
        "t", "st", "dt", "protocol", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl", "auth"]
    assert msg.type == "status" and msg.src == "server1" and msg.dest is None
    assert msg.seq == 0x1E and msg.hg == 0x6B073CE9 and msg.get_hex("dt") == 5000
    assert msg.get_int("protocol") == 1 and msg.get_int("ttl") == 3
    assert msg.get("ld") == "0.32 0.18 0.09 1/98 23722"
    assert msg.get_bytes("srcuuid") == SERVER1_UUID and msg.get("srcuuid") is None
    assert msg.raw is STATUS


def test_documented_rexmit_uses_decimal_ranges_and_addresses_server1():
    msg = decode(REXMIT, SIGNER)
    assert msg.type == "NS_rexmit" and msg.dest == "server1" and msg.seq is None
    assert msg.get_int("firstseq") == 35 and msg.get_int("lastseq") == 35
    assert msg.get_bytes("destuuid") == SERVER1_UUID


def test_classic_rendering_is_what_the_auth_field_signs():
    assert classic_rendering(decode(REXMIT, None).fields) == (
        b"t=NS_rexmit\ndest=server1\nfirstseq=35\nlastseq=35\n(1)destuuid=/S3rWexNQbSH7fT+7XAe/Q==\n"
        b"src=server2\n(1)srcuuid=2MigXinqSfuLVFJBoWM5Lg==\nhg=6b073cde\nts=6b073fc6\nttl=3\n")


def test_all_captured_datagrams_were_extracted():
    counts = {}
    for c in CAPTURED:
        counts[c.capture] = counts.get(c.capture, 0) + 1
    assert counts == {"hb-wire.pcap": 209, "fast-timings.pcap": 56}


@pytest.mark.parametrize("vector", CAPTURED, ids=lambda c: c.id)
def test_captured_datagram_verifies_and_reencodes_byte_identical(vector):
    msg = decode(vector.payload, SIGNER)
    assert trailer_problem(msg, SIGNER) is None
    assert auth_field_problem(msg, SIGNER) is None
    assert msg.fields[-1][1] == "auth"
    assert encode(_without_auth(msg), SIGNER) == vector.payload


def test_wrong_secret_fails_both_digests_of_every_captured_datagram():
    for vector in CAPTURED:
        msg = decode(vector.payload, None)
        assert trailer_problem(msg, WRONG) == "bad_auth", vector.id
        assert auth_field_problem(msg, WRONG) == "bad_auth", vector.id
        with pytest.raises(WireError) as err:
            decode(vector.payload, WRONG)
        assert err.value.reason == "bad_auth"


def test_trailer_signed_by_a_key_number_we_do_not_have_is_unknown_key():
    other_number = Signer({2: ("sha1", SECRET)}, active=2)
    with pytest.raises(WireError) as err:
        decode(STATUS, other_number)
    assert err.value.reason == "unknown_key"


def test_receiver_accepts_any_configured_key_during_rotation():
    rotated = Signer({1: ("sha1", SECRET), 2: ("sha256", b"new-secret")}, active=2)
    assert decode(STATUS, rotated).type == "status"
    fields = _without_auth(decode(STATUS, None))
    assert encode(fields, rotated).endswith(b",") and decode(encode(fields, rotated), rotated)
    assert decode(encode(fields, rotated), None).trailer.startswith(b"2 ")


def test_binary_value_containing_the_end_marker_is_not_mistaken_for_it():
    fields = [(FT_STRING, "t", b"status"), (FT_BINARY, "srcuuid", b"%%%\n###\n12:,0123456")]
    msg = decode(encode(fields, SIGNER), SIGNER)
    assert msg.get_bytes("srcuuid") == b"%%%\n###\n12:,0123456"


def test_get_returns_the_first_of_repeated_fields():
    fields = [(FT_STRING, "t", b"x"), (FT_STRING, "info", b"one"), (FT_STRING, "info", b"two")]
    assert decode(encode(fields, SIGNER), SIGNER).get("info") == "one"


def test_hex_field_is_lowercase_without_prefix():
    assert hex_field(1795636457) == "6b073ce9"
    assert hex_field(0) == "0"
    with pytest.raises(ValueError):
        hex_field(-1)


def test_encode_refuses_fields_heartbeat_could_not_carry():
    for bad in ([(FT_STRING, "auth", b"1 x")], [(FT_STRING, "a=b", b"v")], [(2, "s", b"")],
                [(FT_STRING, "ld", b"two\nlines")]):
        with pytest.raises(ValueError):
            encode(bad, SIGNER)


def _reason(datagram: bytes, signer: Signer | None = SIGNER, **kw) -> str:
    with pytest.raises(WireError) as err:
        decode(datagram, signer, **kw)
    return err.value.reason


@pytest.mark.parametrize("datagram", [
    b"",
    b">>>\nt=status\n<<<\n",                                # classic text form: not sent by 3.0.6 on ucast
    STATUS[:-1],                                            # trailer lost its ','
    STATUS[:100],                                           # truncated inside a field
    STATUS + b"x",                                          # bytes after the trailer
    STATUS.replace(b"11:(0)t=status,", b"12:(0)t=status,"),  # length overruns
    STATUS.replace(b"11:(0)t=status,", b"11:[0]t=status,"),  # no (type)
    STATUS.replace(b"11:(0)t=status,", b"11:(7)t=status,"),  # unknown type code
    STATUS.replace(b"11:(0)t=status,", b"11:(0)tstatus=,").replace(b"(0)tstatus=", b"(0)=tstatus"),
    STATUS.replace(b"9:(0)seq=1e,", b"9:(0)seq=1g,"),       # seq must be hex
    STATUS.replace(b"8:(0)ttl=3,", b"8:(0)ttl=x,"),         # ttl must be decimal
    STATUS.replace(b"11:(0)t", b"-1:(0)t"),
    b"###\n99999999999999999999:x,%%%\n2:1 ,",
], ids=lambda d: repr(d[:24]))
def test_malformed_datagrams_are_refused_as_malformed(datagram):
    assert _reason(datagram) == "malformed"
    assert _reason(datagram, None) == "malformed"


def test_datagram_above_the_size_limit_is_oversized():
    assert _reason(STATUS, max_size=312) == "oversized"
    assert decode(STATUS, SIGNER, max_size=313).type == "status"


def test_tampered_field_or_trailer_is_bad_auth():
    assert _reason(STATUS.replace(b"st=active", b"st=standb")) == "bad_auth"
    assert _reason(STATUS.replace(b"42:1 5648", b"42:1 5649")) == "bad_auth"
    assert _reason(STATUS.replace(b"42:1 5648d633c3e5954e28b88183a54d57dfc6afca92,",
                                  b"4:junk,")) == "bad_auth"
    # Heartbeat does not check the legacy auth= field on receive, nor do we.
    assert decode(STATUS.replace(b"auth=1 8da8", b"auth=1 8da9")
                  .replace(b"5648d633c3e5954e28b88183a54d57dfc6afca92", b"0" * 40), None)
