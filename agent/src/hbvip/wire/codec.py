"""Heartbeat 3.0.6's on-the-wire message format: netstring fields, ``auth=`` field, trailer.

A datagram is ``###\\n``, one netstring ``<len>:(<type>)<name>=<value>,`` per field in
insertion order, ``%%%\\n``, then a netstring holding ``"<authnum> <digest>"`` computed over
everything before it. Field order and bytes are kept exactly as received, because the digests
cover them and a retransmission must be byte-identical to the original.
"""
from __future__ import annotations

import base64
import functools
import re
from collections.abc import Sequence

from hbvip.wire.auth import Signer

FT_STRING = 0
FT_BINARY = 1
# Types 2-5 (struct, list, compressed) exist in Heartbeat's format; we carry them opaquely when
# received so that an unexpected extension field does not make a whole message unreadable.
_KNOWN_TYPES = frozenset(range(6))

Field = tuple[int, str, bytes]

START = b"###\n"
END = b"%%%\n"
DEFAULT_MAX_SIZE = 65507  # the largest UDP payload over IPv4
_MAX_LEN_DIGITS = 6
_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")
_DEC = re.compile(rb"[0-9]{1,18}")
_NAME = re.compile(r"[!-<>-~]+")  # printable ASCII without "=" or space
# Control fields the membership code relies on; a message whose value for them does not parse is
# malformed, so nothing past decode() has to re-check them.
_HEX_FIELDS = ("seq", "hg", "ts")
_DEC_FIELDS = ("ttl",)
#: Parsed fields kept by their netstring body, each with its value as text (None for a non-string field).
#: Most fields of a heartbeat (type, sender, uuid, generation, dead time...) repeat byte for byte in every
#: datagram; parsing and decoding each once saves most of decode's work. Bounded (emptied when full) so
#: that a flood of distinct fields cannot grow it.
_FIELD_CACHE_SIZE = 1024
_parsed_fields: dict[bytes, tuple[Field, str | None]] = {}
#: Fields whose value differs in every message (sequence numbers, the digest): never worth caching.
_UNIQUE = frozenset({"seq", "auth", "ackseq", "firstseq", "lastseq"})
#: Where the repeated start of a message ends (see `_Prefix`): the first field that may differ from the
#: sender's previous message.
_VOLATILE = _UNIQUE | {"hg", "ts", "ld", "ttl"}
#: Starts of recent datagrams kept parsed, most recent first.
_PREFIXES = 4

REASONS = ("malformed", "oversized", "bad_auth", "unknown_key")


class _Prefix:
    """The parsed start of a recent datagram: its fields up to the first volatile one (a heartbeat's type,
    status, dead time, protocol, digest, sender and uuid: 7 of its 13 fields).

    A datagram that starts with the same bytes parses to the same fields there, because a run of whole
    netstrings after ``###\\n`` parses the same wherever it is followed: one byte comparison replaces
    parsing the fields one by one, which is most of what decoding a heartbeat costs."""

    __slots__ = ("raw", "fields", "first", "texts")

    def __init__(self, raw: bytes, fields: list[Field], first: dict[str, Field], texts: dict[str, str]) -> None:
        self.raw = raw
        self.fields = tuple(fields)
        self.first = dict(first)
        self.texts = dict(texts)


_prefixes: list[_Prefix] = []


def _start(datagram: bytes) -> tuple[list[Field], dict[str, Field], dict[str, str], int, bool]:
    """Where `decode` starts: the fields of a known prefix of `datagram` and the offset after it, or none
    and the offset after ``###``; and whether the end of the stable start is still to be found."""
    for i, prefix in enumerate(_prefixes):
        if datagram.startswith(prefix.raw):
            if i:
                _prefixes.insert(0, _prefixes.pop(i))
            return list(prefix.fields), dict(prefix.first), dict(prefix.texts), len(prefix.raw), False
    return [], {}, {}, len(START), True


def _remember_prefix(datagram: bytes, end: int, fields: list[Field], first: dict[str, Field],
                     texts: dict[str, str]) -> None:
    if len(fields) > 1:
        _prefixes.insert(0, _Prefix(datagram[:end], fields, first, texts))
        del _prefixes[_PREFIXES:]


class WireError(Exception):
    """A datagram we refuse; ``reason`` is the drop counter it belongs to."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown WireError reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def hex_field(n: int) -> str:
    """Heartbeat's ``%lx``: lowercase hex without ``0x``."""
    if n < 0:
        raise ValueError(f"hex fields are unsigned, got {n}")
    return format(n, "x")


class Message:
    """A decoded (or about to be sent) message: its fields in wire order plus the raw datagram."""

    __slots__ = ("fields", "raw", "trailer", "signed_len", "stable_len", "texts", "_first", "_numbers")

    def __init__(self, fields: list[Field], raw: bytes, trailer: bytes = b"",
                 signed_len: int = 0, *, texts: dict[str, str] | None = None,
                 first: dict[str, Field] | None = None, stable_len: int = 0) -> None:
        self.fields = fields
        self.raw = raw
        self.trailer = trailer        # the trailer netstring's content, "N <digest>"
        self.signed_len = signed_len  # raw[:signed_len] is what the trailer covers
        self.stable_len = stable_len
        """raw[:stable_len] is the sender's stable start: every field before the first that may differ
        in its next message (sequence numbers, time, load, digest); 0 when there is none."""
        if first is None or texts is None:     # decode() passes both, made in its one pass over the fields
            first, texts = {}, {}
            for field in fields:
                first.setdefault(field[1], field)
                if field[0] == FT_STRING:
                    texts.setdefault(field[1], field[2].decode("utf-8", errors="replace"))
        self._first = first
        self.texts = texts
        """The first string field of each name, as text (undecodable bytes replaced)."""
        self._numbers: dict[tuple[str, int], int | None] = {}   # parsed seq, hg, ts...: decode checks them, readers read them

    def get(self, name: str) -> str | None:
        """First string field called ``name``, as text (undecodable bytes replaced)."""
        field = self._first.get(name)
        if field is None or field[0] != FT_STRING:
            return None
        return self.texts[name]        # the first field of that name is a string: its text is the one kept

    def get_bytes(self, name: str) -> bytes | None:
        """Raw value of the first field called ``name``, whatever its type."""
        field = self._first.get(name)
        return None if field is None else field[2]

    def get_hex(self, name: str) -> int | None:
        """A hex-coded field (``seq``, ``hg``, ``ts``, ``dt``, ``ackseq``); None if absent or not hex."""
        return self._number(name, _HEX, 16)

    def get_int(self, name: str) -> int | None:
        """A decimal field (``firstseq``, ``lastseq``, ``ttl``, ``protocol``); None if absent or not decimal."""
        return self._number(name, _DEC, 10)

    def _number(self, name: str, pattern: re.Pattern[bytes], base: int) -> int | None:
        key = (name, base)
        if key in self._numbers:
            return self._numbers[key]
        field = self._first.get(name)
        number = None if field is None or field[0] != FT_STRING or not pattern.fullmatch(field[2]) else int(field[2], base)
        self._numbers[key] = number
        return number

    @property
    def type(self) -> str | None:
        return self.get("t")

    @property
    def src(self) -> str | None:
        return self.get("src")

    @property
    def dest(self) -> str | None:
        return self.get("dest")

    @property
    def seq(self) -> int | None:
        return self.get_hex("seq")

    @property
    def hg(self) -> int | None:
        return self.get_hex("hg")

    def __repr__(self) -> str:
        return f"Message(t={self.type!r}, src={self.src!r}, seq={self.get('seq')!r}, {len(self.raw)} bytes)"


def _netstring(body: bytes) -> bytes:
    return b"%d:%s," % (len(body), body)


def _classic_line(ftype: int, name: str, value: bytes) -> bytes:
    prefix = b"" if ftype == FT_STRING else b"(%d)" % ftype
    if ftype == FT_BINARY:
        value = base64.b64encode(value)
    return b"%s%s=%s\n" % (prefix, name.encode(), value)


def classic_rendering(fields: Sequence[Field]) -> bytes:
    """The text ``add_msg_auth()`` signs for the legacy ``auth=`` field.

    One ``name=value\\n`` line per field except ``auth``; non-string fields get a ``(type)``
    prefix and binary values are base64 encoded, as ``msg2string_buf()`` writes them.
    """
    return b"".join(_classic_line(ftype, name, value) for ftype, name, value in fields if name != "auth")


@functools.lru_cache(maxsize=256)
def _sendable(ftype: int, name: str, value: bytes) -> tuple[bytes, bytes]:
    """One field to send: (its netstring, its classic line). Cached because a node sends the same
    fields (type, status word, sender, uuid, generation...) in every heartbeat."""
    if ftype not in (FT_STRING, FT_BINARY):
        raise ValueError(f"field {name!r}: only string and binary fields can be sent")
    if name == "auth" or not _NAME.fullmatch(name):
        raise ValueError(f"field name {name!r} cannot be sent")
    if ftype == FT_STRING and b"\n" in value:
        raise ValueError(f"field {name!r}: a string value cannot contain a newline")
    return _netstring(b"(%d)%s=%s" % (ftype, name.encode(), value)), _classic_line(ftype, name, value)


def encode(fields: Sequence[Field], signer: Signer) -> bytes:
    """The datagram Heartbeat would send for ``fields``: the fields, ``auth=``, ``%%%``, trailer.

    ``fields`` must not contain ``auth``; it is computed here (over the classic rendering) and
    appended last, as ``add_control_msg_fields()`` does.
    """
    return seal(*encode_parts(fields), signer)


def encode_parts(fields: Sequence[Field], *, cache: bool = True) -> tuple[bytes, bytes]:
    """``fields`` as (their netstrings, their classic rendering): a run of fields in the middle of a
    datagram, so that a sender can keep the parts that repeat (see `seal`). ``cache=False`` for fields
    that never repeat (a sequence number)."""
    sendable = _sendable if cache else _sendable.__wrapped__
    netstrings = []
    classic = []
    for ftype, name, value in fields:
        netstring, line = sendable(ftype, name, bytes(value))
        netstrings.append(netstring)
        classic.append(line)
    return b"".join(netstrings), b"".join(classic)


def seal(netstrings: bytes, classic: bytes, signer: Signer) -> bytes:
    """The datagram of the fields whose `encode_parts` are ``netstrings`` and ``classic``: ``auth=`` over
    the classic rendering, ``%%%`` and the trailer over everything before it."""
    signed = b"".join((START, netstrings, _netstring(b"(0)auth=" + signer.sign(classic).encode()), END))
    return signed + _netstring(signer.sign(signed).encode())


def _read_netstring(data: bytes, pos: int) -> tuple[bytes, int]:
    """The body of the netstring at ``pos`` and the offset just past it."""
    colon = data.find(b":", pos, pos + _MAX_LEN_DIGITS + 1)
    if colon <= pos or not data[pos:colon].isdigit():
        raise WireError("malformed", f"bad netstring length at offset {pos}")
    end = colon + 1 + int(data[pos:colon])
    if end >= len(data) or data[end] != 0x2C:  # ","
        raise WireError("malformed", f"netstring at offset {pos} overruns or lacks its ','")
    return data[colon + 1:end], end + 1


def _parse_field(body: bytes, pos: int) -> Field:
    close = body.find(b")", 0, 4)  # "(" + at most two digits + ")"
    equals = body.find(b"=", close + 1)
    if not body.startswith(b"(") or close < 2 or equals <= close + 1 or not body[1:close].isdigit():
        raise WireError("malformed", f"field at offset {pos} is not (type)name=value")
    ftype = int(body[1:close])
    if ftype not in _KNOWN_TYPES:
        raise WireError("malformed", f"field at offset {pos} has unknown type {ftype}")
    try:
        name = body[close + 1:equals].decode("ascii")
    except UnicodeDecodeError:
        raise WireError("malformed", f"field name at offset {pos} is not ASCII") from None
    return ftype, name, body[equals + 1:]


def decode(datagram: bytes, signer: Signer | None, *, max_size: int = DEFAULT_MAX_SIZE) -> Message:
    """Parse one datagram; check its trailer when ``signer`` is given.

    Raises only :class:`WireError`, whatever the input, so the receive loop can count and drop.
    The legacy ``auth=`` field is not checked, exactly like Heartbeat on netstring receive.
    """
    if len(datagram) > max_size:
        raise WireError("oversized", f"{len(datagram)} bytes > {max_size}")
    if not datagram.startswith(START):
        raise WireError("malformed", "does not start with ###")
    fields, first, texts, pos, scanning = _start(datagram)
    stable = pos
    cache = _parsed_fields
    size = len(datagram)
    while not datagram.startswith(END, pos):
        # _read_netstring inlined: this loop runs for every field of every datagram, floods included.
        colon = datagram.find(b":", pos, pos + _MAX_LEN_DIGITS + 1)
        digits = datagram[pos:colon]
        end = colon + 1 + int(digits) if colon > pos and digits.isdigit() else size
        if end >= size or datagram[end] != 0x2C:
            _read_netstring(datagram, pos)    # raises the WireError that says what is wrong
        body = datagram[colon + 1:end]
        parsed = cache.get(body)
        if parsed is None:
            field = _parse_field(body, pos)
            parsed = field, field[2].decode("utf-8", errors="replace") if field[0] == FT_STRING else None
            if field[1] not in _UNIQUE:
                if len(cache) >= _FIELD_CACHE_SIZE:
                    cache.clear()
                cache[body] = parsed
        field, text = parsed
        name = field[1]
        if scanning and name in _VOLATILE:
            scanning = False
            stable = pos
            _remember_prefix(datagram, pos, fields, first, texts)
        fields.append(field)
        if name not in first:
            first[name] = field
        if text is not None and name not in texts:
            texts[name] = text
        pos = end + 1
    signed_end = pos + len(END)
    trailer, end = _read_netstring(datagram, signed_end)
    if end != len(datagram):
        raise WireError("malformed", f"{len(datagram) - end} bytes after the trailer")
    message = Message(fields, datagram, trailer, signed_end, texts=texts, first=first,
                      stable_len=stable if stable > len(START) else 0)
    _check_control_fields(message)
    if signer is not None:
        reason = trailer_problem(message, signer)
        if reason is not None:
            raise WireError(reason, f"trailer {trailer[:60]!r}")
    return message


def trailer_problem(message: Message, signer: Signer) -> str | None:
    """None when the trailer authenticates the message, else ``bad_auth`` or ``unknown_key``."""
    try:
        value = message.trailer.decode("ascii")
    except UnicodeDecodeError:
        return "bad_auth"
    return signer.check(message.raw[:message.signed_len], value)


def auth_field_problem(message: Message, signer: Signer) -> str | None:
    """Like :func:`trailer_problem` for the legacy ``auth=`` field (Heartbeat does not check it)."""
    value = message.get("auth")
    if value is None:
        return "bad_auth"
    return signer.check(classic_rendering(message.fields), value)


def _check_control_fields(message: Message) -> None:
    """Parse the control numbers a message has (`Message.get_hex`/`get_int` then only read them); one
    that does not parse makes the message malformed. Written out, not via `_number`: every datagram
    comes through here."""
    present = message._first  # pylint: disable=protected-access  # the codec's own message
    numbers = message._numbers  # pylint: disable=protected-access
    for names, pattern, base, kind in _CONTROL_NUMBERS:
        for name in names:
            field = present.get(name)
            if field is None:
                continue
            if field[0] != FT_STRING or not pattern.fullmatch(field[2]):
                raise WireError("malformed", f"{name} is not {kind}")
            numbers[name, base] = int(field[2], base)


_CONTROL_NUMBERS = ((_HEX_FIELDS, _HEX, 16, "hex"), (_DEC_FIELDS, _DEC, 10, "decimal"))
