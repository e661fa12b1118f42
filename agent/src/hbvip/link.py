"""The heartbeat link: our outgoing messages (sequence numbers, signing, the resend history); incoming
datagrams are read for the membership machine by `hbvip.node.read_datagram`.

It imports nothing of the decision machinery (`hbvip.cluster`): the daemon sends its first heartbeat
through it before it loads that (see hbvip.daemon).

It owns the transport in use, which a reload may swap for one with other paths (`swap`), so the
messages of a running agent keep one sequence and one history across reloads.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from collections.abc import Callable

from .clock import Clock
from .config import Config
from .net.transport import Transport
from .wire import Signer, build_head, encode_parts, seal, sequence_fields

#: Own datagrams kept for answering NS_rexmit byte-identically.
SEND_HISTORY = 200
#: Encoded message heads kept (see `Link.send`); a node sends a handful of distinct ones, mostly its heartbeat.
HEAD_CACHE = 64
#: Encoded sequence fields after `seq` kept (see `Link._sequence_parts`): numbered and `NS_*` messages differ.
TAIL_CACHE = 4
#: Larger datagrams are dropped as `oversized` before parsing: a two-node haresources pair never sends
#: more than a few KB, so this only bounds the work a hostile sender can make us do per datagram.
MAX_DATAGRAM = 32768
#: The extra field of `status` messages that carries the sender's config digest (see hbvip.diagnosis).
DIGEST_FIELD = "hbvip_digest"


def status_body(config: Config, status: str, extra: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
    """The fields of our `status` message (the heartbeat): status word, dead time, protocol, config digest,
    and `extra` ones (the node's grace for a restarting peer, see hbvip.cluster.grace)."""
    return _status_body(status, config.hacf.timers.deadtime, config.digest) + extra


@functools.lru_cache(maxsize=8)
def _status_body(status: str, deadtime: float, digest: str) -> tuple[tuple[str, str], ...]:
    """Made once per status word and config, not per heartbeat."""
    return (("st", status), ("dt", f"{round(deadtime * 1000):x}"), ("protocol", "1"), (DIGEST_FIELD, digest))


def transport_for(cfg: Config, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> Transport:
    """The transport ha.cf's media lines (`ucast`, `ucast6`, `bcast`, `mcast`, `mcast6`) and `udpport` describe."""
    peers = [(m.address, m.interface) for m in cfg.hacf.media if m.kind in ("ucast", "ucast6") and m.address]
    bcast = [m.interface for m in cfg.hacf.media if m.kind == "bcast"]
    groups = [(m.address, m.interface, m.port or cfg.hacf.udpport, m.ttl, m.loop)
              for m in cfg.hacf.media if m.kind in ("mcast", "mcast6") and m.address]
    return Transport(cfg.hacf.udpport, peers, on_datagram, broadcast_interfaces=bcast, multicast=groups)


class Link:
    """Sends our messages over the current transport and keeps what the peer may ask us to resend."""

    def __init__(self, node_name: str, signer: Signer, clock: Clock) -> None:
        self.node_name = node_name
        self.signer = signer
        self.clock = clock
        self.transport: Transport | None = None
        self.uuid = b""
        self.generation = 0
        self.seq = 0
        self.history: OrderedDict[int, bytes] = OrderedDict()
        self.sent = 0
        self.received = 0
        self.retransmitted = 0
        self._heads: dict[tuple[str, tuple[tuple[str, str | bytes], ...], bytes], tuple[bytes, bytes]] = {}
        self._tails: dict[tuple[int, int, str | None], tuple[bytes, bytes]] = {}
        self._loadavg = _LoadAvg(clock)

    @property
    def peer_addresses(self) -> list[str]:
        return self.transport.peer_addresses if self.transport else []

    def send(self, mtype: str, body: tuple[tuple[str, str | bytes], ...]) -> None:
        """Send one message; numbered messages (all but `NS_*`) also go into the resend history.

        A message is its head (type, body, sender: the same in every heartbeat) and its sequence fields
        (seq, generation, time, load); the head is encoded once per distinct message and kept."""
        if self.transport is None:
            return
        seq: int | None = None
        ld: str | None = None
        if not mtype.startswith("NS_"):
            self.seq += 1
            seq = self.seq
            ld = self._loadavg()
        key = (mtype, body, self.uuid)
        head = self._heads.get(key)
        if head is None:
            head = self._encode_head(mtype, body)
            if len(self._heads) >= HEAD_CACHE:
                self._heads.clear()
            self._heads[key] = head
        netstrings, classic = self._sequence_parts(seq, ld)
        data = seal(head[0] + netstrings, head[1] + classic, self.signer)
        if seq is not None:
            self.history[seq] = data
            while len(self.history) > SEND_HISTORY:
                self.history.popitem(last=False)
        self.transport.send(data)
        self.sent += 1

    def _sequence_parts(self, seq: int | None, ld: str | None) -> tuple[bytes, bytes]:
        """`encode_parts` of the sequence fields: `seq`, new in every numbered message, encoded as it is
        (uncached: it would only push useful entries out of the codec's cache), before the fields that
        repeat from one message to the next (generation, time, load, ttl), encoded once per change."""
        key = (self.generation, int(self.clock.wall()), ld)
        tail = self._tails.get(key)
        if tail is None:
            if len(self._tails) >= TAIL_CACHE:
                self._tails.clear()
            tail = self._tails[key] = encode_parts(sequence_fields(seq=None, hg=key[0], ts=key[1], ld=ld))
        if seq is None:
            return tail
        seq_field = sequence_fields(seq=seq, hg=0, ts=0, ld=None)[0]      # seq comes first
        netstring, classic = encode_parts((seq_field,), cache=False)
        return netstring + tail[0], classic + tail[1]

    def _encode_head(self, mtype: str, body: tuple[tuple[str, str | bytes], ...]) -> tuple[bytes, bytes]:
        """The `encode_parts` of a message's fields up to `srcuuid`; `dest` and `destuuid` in `body` address it."""
        dest = None
        destuuid = None
        rest = []
        for k, v in body:
            if k == "dest" and isinstance(v, str):
                dest = v
            elif k == "destuuid" and isinstance(v, bytes):
                destuuid = v
            else:
                rest.append((k, v))
        return encode_parts(build_head(mtype, rest, src=self.node_name, srcuuid=self.uuid, dest=dest, destuuid=destuuid))

    def retransmit(self, firstseq: int, lastseq: int) -> None:
        """The peer's NS_rexmit: our messages firstseq..lastseq again, byte-identical, if still kept."""
        for seq in range(firstseq, lastseq + 1):
            raw = self.history.get(seq)
            if raw is not None and self.transport is not None:
                self.transport.send(raw)
                self.retransmitted += 1

    def same_paths(self, other: Transport) -> bool:
        old = self.transport
        return old is not None and (other.port, other.peer_addresses, other.broadcast_interfaces, other.multicast) == \
            (old.port, old.peer_addresses, old.broadcast_interfaces, old.multicast)


class _LoadAvg:
    """The `ld` field. The kernel updates /proc/loadavg every 5 s, so reading it more than once a second
    (a 50 ms keepalive sends 20 messages a second) would only cost a read per message. The file stays
    open and is read again from its start: one system call, where open/read/close are nine."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.text = ""
        self.read_at = float("-inf")
        self._fd: int | None = None

    def __call__(self) -> str:
        now = self.clock.monotonic()
        if now - self.read_at >= 1.0:
            try:
                if self._fd is None:
                    self._fd = os.open("/proc/loadavg", os.O_RDONLY | os.O_CLOEXEC)
                self.text = os.pread(self._fd, 128, 0).decode("ascii").strip()
            except (OSError, UnicodeDecodeError):
                self.text = "0.00 0.00 0.00 1/1 1"
            self.read_at = now
        return self.text
