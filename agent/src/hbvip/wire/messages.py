"""Assemble a message's fields in the exact order Heartbeat 3.0.6 puts them on the wire.

The order matters because both digests cover it. From the captures:

* ``t`` first, then the message-specific fields, then the control fields that
  ``add_control_msg_fields()`` appends: ``src``, ``srcuuid``, ``seq``, ``hg``, ``ts``, ``ld``,
  ``ttl`` (``auth`` is added by :func:`encode`).
* An addressed message carries ``dest`` right after ``t`` (``NS_ackmsg``, ``NS_rexmit``,
  ``reqnodes``, ``ip-request-resp``) and ``destuuid`` after the message-specific fields, just
  before ``src``: the builder sets ``dest`` and the send path adds ``destuuid`` later.
* ``repnodes`` is the exception: its builder sets ``dest`` *before* ``t``.
"""
from __future__ import annotations

from collections.abc import Sequence

from hbvip.wire.codec import FT_BINARY, FT_STRING, Field, hex_field

_DEST_BEFORE_TYPE = frozenset({"repnodes"})
_RESERVED = frozenset({"t", "dest", "destuuid", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl", "auth"})


def _string(name: str, value: str) -> Field:
    return (FT_STRING, name, value.encode())


def control_fields(*, src: str, srcuuid: bytes, seq: int | None, hg: int, ts: int, ld: str | None,
                   ttl: int = 3, dest: str | None = None, destuuid: bytes | None = None) -> list[Field]:
    """The trailing control fields. ``seq`` and ``ld`` are left out when None (``NS_*`` types).

    ``dest``/``destuuid``, when given, are put first (before ``src``), which is right only for a
    message without specific fields; :func:`build` places them the way the captures show.
    """
    fields: list[Field] = []
    if dest is not None:
        fields.append(_string("dest", dest))
    if destuuid is not None:
        fields.append((FT_BINARY, "destuuid", bytes(destuuid)))
    fields += [_string("src", src), (FT_BINARY, "srcuuid", bytes(srcuuid))]
    return fields + sequence_fields(seq=seq, hg=hg, ts=ts, ld=ld, ttl=ttl)


def sequence_fields(*, seq: int | None, hg: int, ts: int, ld: str | None, ttl: int = 3) -> list[Field]:
    """The control fields after ``srcuuid``, the only ones that change from one heartbeat to the next:
    ``seq``, ``hg``, ``ts``, ``ld``, ``ttl`` (``seq`` and ``ld`` left out when None)."""
    fields: list[Field] = []
    if seq is not None:
        fields.append(_string("seq", hex_field(seq)))
    fields += [_string("hg", hex_field(hg)), _string("ts", hex_field(ts))]
    if ld is not None:
        fields.append(_string("ld", ld))
    fields.append(_string("ttl", str(ttl)))
    return fields


def build(msgtype: str, body: Sequence[tuple[str, str | bytes]], *, src: str, srcuuid: bytes,
          seq: int | None, hg: int, ts: int, ld: str | None, ttl: int = 3,
          dest: str | None = None, destuuid: bytes | None = None) -> list[Field]:
    """All fields of a ``msgtype`` message, ready for :func:`encode`.

    ``body`` holds the message-specific fields in order (str values become string fields, bytes
    values binary ones). ``dest``/``destuuid`` address the message to one node and are placed
    as Heartbeat places them for ``msgtype``.
    """
    return (build_head(msgtype, body, src=src, srcuuid=srcuuid, dest=dest, destuuid=destuuid)
            + sequence_fields(seq=seq, hg=hg, ts=ts, ld=ld, ttl=ttl))


def build_head(msgtype: str, body: Sequence[tuple[str, str | bytes]], *, src: str, srcuuid: bytes,
               dest: str | None = None, destuuid: bytes | None = None) -> list[Field]:
    """The fields of :func:`build` up to ``srcuuid``: the same in every message of one type and body."""
    specific: list[Field] = []
    for name, value in body:
        if name in _RESERVED:
            raise ValueError(f"{name!r} is set by build(), not passed in the body")
        if isinstance(value, str):
            specific.append(_string(name, value))
        else:
            specific.append((FT_BINARY, name, bytes(value)))
    head = [_string("t", msgtype)]
    if dest is not None:
        if msgtype in _DEST_BEFORE_TYPE:
            head.insert(0, _string("dest", dest))
        else:
            head.append(_string("dest", dest))
    if destuuid is not None:
        specific.append((FT_BINARY, "destuuid", bytes(destuuid)))
    return head + specific + [_string("src", src), (FT_BINARY, "srcuuid", bytes(srcuuid))]
