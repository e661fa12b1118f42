"""atheris (libFuzzer) target for the Heartbeat wire codec; `make soak` runs it for >= 10^6 inputs.

The hypothesis fuzz in tests/unit/test_wire_fuzz.py runs in `make test` and covers the promise in
seconds; this one runs long and coverage-guided. The properties are the receive loop's: decode() raises
WireError and nothing else, whatever the bytes; and whatever parses re-encodes, re-signed, to a message
with the same fields, `auth` aside (a retransmission must be byte-identical, so the codec must not lose anything).
Seeds are the captured Heartbeat 3.0.6 datagrams in tests/data/wire.

  PYTHONPATH=agent/src:. python tests/fuzz/fuzz_codec.py -atheris_runs=1000000 [-max_len=2048] [CORPUS_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from hbvip.wire import REASONS, Signer, WireError, decode, encode

SECRET = b"labsecret-0123"
SIGNER = Signer({1: ("sha1", SECRET), 3: ("crc", b"")}, active=1)


def one_input(data: bytes) -> None:
    for signer in (SIGNER, None):            # None: past the HMAC, so the parser sees every mutation
        try:
            msg = decode(data, signer)
        except WireError as exc:
            if exc.reason not in REASONS:
                raise AssertionError(f"unknown reason {exc.reason!r}") from exc
            continue
        msg.type, msg.src, msg.seq, msg.hg, msg.dest      # the accessors the daemon reads must not raise
        fields = [f for f in msg.fields if f[1] != "auth"]   # encode() computes auth itself
        try:
            raw = encode(fields, SIGNER)
        except ValueError:                                  # received but not sendable (e.g. a struct field)
            continue
        again = [f for f in decode(raw, SIGNER).fields if f[1] != "auth"]
        if again != fields:
            raise AssertionError(f"re-encoding changed the fields: {fields!r} -> {again!r}")


def seed_corpus(directory: Path) -> None:
    """Write the captured datagrams as seed files (once) into `directory`."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.data.wire.vectors import captured
    directory.mkdir(parents=True, exist_ok=True)
    for c in captured()[::5]:
        (directory / c.id.replace("#", "-")).write_bytes(c.payload)


def main() -> None:
    corpus = next((Path(a) for a in sys.argv[1:] if not a.startswith("-")), None)
    if corpus is not None and not any(corpus.glob("*")):
        seed_corpus(corpus)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
