"""Message authentication as Heartbeat's HBauth plugins compute it.

Every datagram carries ``"<authnum> <digest>"`` values (the trailer and the legacy ``auth=``
field). A receiver must be able to check them against *any* key listed in authkeys, because
during a key rotation the peer may still sign with an older number, while it always signs
with the active one (``auth N``).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing before the first heartbeat
if TYPE_CHECKING:
    from typing import Any

_CRC_POLY = 0x04C11DB7


@functools.cache
def _crc_table() -> tuple[int, ...]:
    """Table for the MSB-first CRC-32 (polynomial 0x04C11DB7) that Heartbeat's crc plugin uses."""
    table = []
    for byte in range(256):
        crc = byte << 24
        for _unused in range(8):
            crc = ((crc << 1) ^ _CRC_POLY) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


def _crc(_key: bytes, data: bytes) -> str:
    """Heartbeat's ``crc`` method: CRC-32/POSIX without the length suffix, ``%lx`` formatted.

    It ignores the key (authkeys ``N crc`` takes none), so it detects corruption, not forgery.
    The C code shifts a 64-bit ``unsigned long`` and masks at the end; only the low 32 bits ever
    feed the table index, so a 32-bit register gives the same result.
    """
    crc = 0
    table = _crc_table()   # built on first use: most pairs never use crc
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return format(~crc & 0xFFFFFFFF, "x")


def _hmac(digest: str) -> Callable[[bytes, bytes], str]:
    def calc(key: bytes, data: bytes) -> str:
        return hmac.new(key, data, digest).hexdigest()
    return calc


def _keyed(method: str, secret: bytes) -> Callable[[bytes], str]:
    """`METHODS[method]` with the key bound. For the HMACs the two keyed hash states of RFC 2104 (key ⊕
    ipad, key ⊕ opad) are computed once and copied per message: a copy of each, two updates, no hmac
    object and no look-up of the digest by name per message, which is what hmac.new() costs."""
    if method == "crc":
        return lambda data: _crc(secret, data)
    inner, outer = hashlib.new(method), hashlib.new(method)
    key = secret if len(secret) <= inner.block_size else hashlib.new(method, secret).digest()
    key = key.ljust(inner.block_size, b"\0")
    inner.update(key.translate(_IPAD))
    outer.update(key.translate(_OPAD))

    def calc(data: bytes) -> str:
        digest = inner.copy()
        digest.update(data)
        mac = outer.copy()
        mac.update(digest.digest())
        return mac.hexdigest()
    return calc


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


METHODS: dict[str, Callable[[bytes, bytes], str]] = {
    "sha1": _hmac("sha1"),
    "md5": _hmac("md5"),
    "sha256": _hmac("sha256"),  # hbvip extension: Heartbeat has no sha256 plugin
    "crc": _crc,
}

_VALUE = re.compile(r"([0-9]{1,9}) (\S+)")


class Signer:
    """Signs with the active authkeys entry and verifies against any configured entry."""

    __slots__ = ("_keys", "_macs", "active")

    def __init__(self, keys: Mapping[int, tuple[str, bytes]], active: int) -> None:
        for num, (method, _secret) in keys.items():
            if method not in METHODS:
                raise ValueError(f"authkeys {num}: unknown method {method!r} "
                                 f"(one of {', '.join(sorted(METHODS))})")
        if active not in keys:
            raise ValueError(f"active key {active} is not among the configured keys")
        self._keys = {int(n): (m, bytes(s)) for n, (m, s) in keys.items()}
        self._macs = {n: _keyed(m, s) for n, (m, s) in self._keys.items()}
        self.active = active

    @classmethod
    def from_authkeys(cls, authkeys: Any) -> Signer:
        """Build from the config layer's authkeys object (``.active`` and ``.keys[n].method/.secret``)."""
        keys = {}
        for num, key in authkeys.keys.items():
            secret = key.secret if key.secret is not None else b""
            keys[num] = (key.method, secret.encode() if isinstance(secret, str) else secret)
        return cls(keys, authkeys.active)

    def sign(self, data: bytes) -> str:
        """``"<active> <digest>"`` over ``data``."""
        return f"{self.active} {self._macs[self.active](data)}"

    def check(self, data: bytes, value: str) -> str | None:
        """None when ``value`` authenticates ``data``; else the WireError reason why not.

        ``unknown_key`` (the key number is not in our authkeys) is told apart from ``bad_auth``
        because it usually means the two nodes' authkeys differ, not that someone forges.
        """
        match = _VALUE.fullmatch(value)
        if match is None:
            return "bad_auth"
        num = int(match.group(1))
        if num not in self._keys:
            return "unknown_key"
        expected = self._macs[num](data)
        if not hmac.compare_digest(expected.encode(), match.group(2).encode("ascii", "replace")):
            return "bad_auth"
        return None

    def verify(self, data: bytes, value: str) -> bool:
        """True when ``value`` (``"N <digest>"``) authenticates ``data`` with configured key N."""
        return self.check(data, value) is None

    def __repr__(self) -> str:
        methods = {n: m for n, (m, _s) in sorted(self._keys.items())}
        return f"Signer(active={self.active}, methods={methods})"
