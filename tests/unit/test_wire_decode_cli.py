"""describe() is what an operator reads when debugging a capture; it must never raise."""
from __future__ import annotations

from hbvip.wire import Signer
from hbvip.wire.decode_cli import describe
from tests.data.wire.vectors import SECRET, captured

SIGNER = Signer({1: ("sha1", SECRET)}, active=1)


def _first(msgtype: bytes) -> bytes:
    return next(c.payload for c in captured() if b"(0)t=%s," % msgtype in c.payload)


def test_headline_reads_like_the_lab_timeline():
    text = describe(_first(b"NS_rexmit"), SIGNER)
    head = text.splitlines()[0]
    assert head.split() == ["server2", "t=NS_rexmit", "seq=-", "hg=6b073cde", "dest=server1",
                            "firstseq=35", "lastseq=35"]
    assert "  destuuid = fd2deb59-ec4d-41b4-87ed-f4feed701efd" in text
    assert text.endswith("trailer: ok; auth= field: ok")


def test_wrong_secret_is_reported_not_raised():
    text = describe(_first(b"status"), Signer({1: ("sha1", b"nope")}, 1))
    assert "st=init" in text.splitlines()[0]
    assert text.endswith("trailer: FAILED (bad_auth); auth= field: FAILED (bad_auth)")


def test_without_signer_the_trailer_is_shown_unchecked():
    assert describe(_first(b"status"), None).endswith("(not checked)")


def test_garbage_is_described_as_undecodable():
    assert describe(b"hello", SIGNER) == "undecodable datagram, 5 bytes: malformed: does not start with ###"
