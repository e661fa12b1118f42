"""Heartbeat 3.0.6's wire protocol: netstring codec, HMACs, message layout, identity files.

Pure code (no sockets): the transport hands datagrams in and out, the cluster logic reads
:class:`Message` objects and asks :func:`build` for the fields of what it sends.
"""
from __future__ import annotations

from hbvip.wire.auth import Signer
from hbvip.wire.codec import (
    FT_BINARY,
    FT_STRING,
    REASONS,
    Field,
    Message,
    WireError,
    auth_field_problem,
    classic_rendering,
    decode,
    encode,
    encode_parts,
    hex_field,
    seal,
    trailer_problem,
)
from hbvip.wire.messages import build, build_head, control_fields, sequence_fields

__all__ = [
    "FT_BINARY", "FT_STRING", "REASONS", "Field", "Message", "Signer", "WireError",
    "auth_field_problem", "build", "build_head", "classic_rendering", "control_fields", "decode", "encode",
    "encode_parts", "hex_field", "seal", "sequence_fields", "trailer_problem",
]
