"""Human-readable rendering of one datagram, for the ``hbvip decode`` debug subcommand.

The first line looks like a line of the lab's ``timeline.txt`` (sender, type, seq, generation,
addressee, the message-specific fields) so a capture of hbvip reads like one of Heartbeat;
the lines below list every field in wire order and what the digests say.
"""
from __future__ import annotations

import uuid

from hbvip.wire.auth import Signer
from hbvip.wire.codec import (
    FT_BINARY,
    FT_STRING,
    Field,
    Message,
    WireError,
    auth_field_problem,
    decode,
    trailer_problem,
)

# Shown in the headline already, or noise in it (they are in the field list below).
_NOT_IN_HEADLINE = frozenset({"t", "src", "srcuuid", "dest", "destuuid", "seq", "hg", "ts", "ld",
                              "ttl", "auth"})


def _value(field: Field) -> str:
    ftype, _name, value = field
    if ftype == FT_STRING:
        return value.decode("utf-8", errors="replace")
    if ftype == FT_BINARY and len(value) == 16:
        return str(uuid.UUID(bytes=value))
    return f"({ftype}) {value.hex()}"


def _verdict(problem: str | None) -> str:
    return "ok" if problem is None else f"FAILED ({problem})"


def headline(message: Message) -> str:
    """``src  t=type  seq=N  hg=G  [dest=D]  name=value ...`` as in timeline.txt."""
    specific = " ".join(f"{f[1]}={_value(f)}" for f in message.fields if f[1] not in _NOT_IN_HEADLINE)
    dest = f"dest={message.dest} " if message.dest is not None else ""
    return (f"{message.src or '?':8} t={message.type or '?':14} seq={message.get('seq') or '-':4} "
            f"hg={message.get('hg') or '-'} {dest}{specific}").rstrip()


def describe(datagram: bytes, signer: Signer | None) -> str:
    """Render ``datagram``; never raises. With ``signer``, also say whether both digests verify."""
    try:
        message = decode(datagram, None)
    except WireError as exc:
        return f"undecodable datagram, {len(datagram)} bytes: {exc}"
    lines = [headline(message)]
    lines += [f"  {name} = {_value((ftype, name, value))}" for ftype, name, value in message.fields]
    if signer is None:
        lines.append(f"  trailer = {message.trailer.decode('ascii', errors='replace')} (not checked)")
    else:
        lines.append(f"  trailer: {_verdict(trailer_problem(message, signer))}; "
                     f"auth= field: {_verdict(auth_field_problem(message, signer))}")
    return "\n".join(lines)
