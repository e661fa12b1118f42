"""The digests Heartbeat's HBauth plugins compute, and how keys are chosen."""
from __future__ import annotations

import hashlib
import hmac
from types import SimpleNamespace

import pytest

from hbvip.wire import Signer


def test_sha1_is_rfc2104_hmac_as_in_the_documented_trailer():
    signer = Signer({1: ("sha1", b"labsecret-0123")}, active=1)
    assert signer.sign(b"abc") == "1 " + hmac.new(b"labsecret-0123", b"abc", hashlib.sha1).hexdigest()


@pytest.mark.parametrize("method, digest", [("md5", hashlib.md5), ("sha256", hashlib.sha256)])
def test_md5_and_sha256_are_hmacs_with_the_secret(method, digest):
    signer = Signer({2: (method, b"k")}, active=2)
    assert signer.sign(b"data") == "2 " + hmac.new(b"k", b"data", digest).hexdigest()


def test_crc_matches_heartbeats_crc_plugin_and_ignores_the_key():
    # The crc plugin is the MSB-first CRC-32 (poly 0x04C11DB7, init 0, inverted, "%lx");
    # its standard check value over "123456789" is 0x765e7680.
    assert Signer({1: ("crc", b"")}, 1).sign(b"123456789") == "1 765e7680"
    assert Signer({1: ("crc", b"any key")}, 1).sign(b"123456789") == "1 765e7680"
    # "%lx" does not pad: a small CRC is fewer than 8 digits.
    assert Signer({1: ("crc", b"")}, 1).sign(b"8") == "1 dc57fd7"


def test_verify_accepts_any_configured_key_and_refuses_others():
    old = Signer({1: ("sha1", b"old")}, active=1)
    both = Signer({1: ("sha1", b"old"), 2: ("md5", b"new")}, active=2)
    assert both.verify(b"m", old.sign(b"m"))
    assert both.check(b"m", old.sign(b"m").replace("1 ", "3 ", 1)) == "unknown_key"
    assert both.check(b"m2", old.sign(b"m")) == "bad_auth"
    assert both.check(b"m", "garbage") == "bad_auth"
    assert both.check(b"m", old.sign(b"m").upper()) == "bad_auth"


def test_from_authkeys_accepts_the_config_objects_and_str_secrets():
    authkeys = SimpleNamespace(active=1, keys={1: SimpleNamespace(method="sha1", secret="labsecret-0123"),
                                               2: SimpleNamespace(method="crc", secret=None)})
    signer = Signer.from_authkeys(authkeys)
    assert signer.sign(b"x") == Signer({1: ("sha1", b"labsecret-0123")}, 1).sign(b"x")


def test_repr_never_shows_the_secret():
    assert "labsecret" not in repr(Signer({1: ("sha1", b"labsecret-0123")}, 1))
    assert "sha1" in repr(Signer({1: ("sha1", b"labsecret-0123")}, 1))


def test_unknown_method_or_missing_active_key_is_refused():
    with pytest.raises(ValueError, match="unknown method"):
        Signer({1: ("sha512", b"k")}, 1)
    with pytest.raises(ValueError, match="active key 2"):
        Signer({1: ("sha1", b"k")}, 2)
