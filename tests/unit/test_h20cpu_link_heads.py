"""The link keeps each message's encoded head: what goes on the wire stays byte for byte what the
one encoder (`build` + `encode`) makes, for every message type, on the first send and every later one."""

from __future__ import annotations

from dataclasses import dataclass, field

from hbvip import link as link_module
from hbvip.clock import Clock
from hbvip.link import Link
from hbvip.wire import Signer, build, decode, encode

SIGNER = Signer({1: ("sha1", b"labsecret-0123")}, 1)
UUID = bytes(range(16))
PEER_UUID = bytes(range(16, 32))
LD = "0.25 0.20 0.18 1/97 4242"


@dataclass
class Wire:
    sent: list[bytes] = field(default_factory=list)
    peer_addresses: tuple[str, ...] = ("10.99.0.2",)

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def a_link(now: list[float]) -> tuple[Link, Wire]:
    link = Link("server1", SIGNER, Clock(monotonic=lambda: now[0], wall=lambda: 1.7e9 + now[0]))
    wire = Wire()
    link.transport = wire  # type: ignore[assignment]
    link.uuid, link.generation = UUID, 7
    link._loadavg = lambda: LD  # type: ignore[method-assign]  # the host's load is not what is tested here
    return link, wire


MESSAGES: list[tuple[str, tuple[tuple[str, str | bytes], ...]]] = [
    ("status", (("st", "active"), ("dt", "bb8"), ("protocol", "1"), ("hbvip_digest", "ca8c888a03131f0f"))),
    ("NS_ackmsg", (("dest", "server2"), ("ackseq", "a"))),
    ("NS_rexmit", (("dest", "server2"), ("firstseq", "3"), ("lastseq", "3"), ("destuuid", PEER_UUID))),
    ("repnodes", (("dest", "server2"), ("nodelist", "server1 server2 "), ("delnodelist", " "))),
    ("resource", (("rsc_hold", "all"), ("isstable", "1"), ("rtype", "full"))),
    ("starting", ()),
]


def expected(link: Link, mtype: str, body: tuple[tuple[str, str | bytes], ...], seq: int | None, ts: int) -> bytes:
    dest = next((v for k, v in body if k == "dest"), None)
    destuuid = next((v for k, v in body if k == "destuuid"), None)
    rest = [(k, v) for k, v in body if k not in ("dest", "destuuid")]
    return encode(build(mtype, rest, src="server1", srcuuid=UUID, seq=seq, hg=link.generation, ts=ts,
                        ld=None if seq is None else LD, dest=dest, destuuid=destuuid), SIGNER)  # type: ignore[arg-type]


def test_every_message_is_sent_as_the_encoder_makes_it_the_first_time_and_every_time_after() -> None:
    now = [100.0]
    link, wire = a_link(now)
    want = []
    for round_ in range(3):
        for mtype, body in MESSAGES:
            now[0] += 1.5           # ts moves on: only the sequence fields differ from one send to the next
            seq = None if mtype.startswith("NS_") else link.seq + 1
            want.append(expected(link, mtype, body, seq, int(1.7e9 + now[0])))
            link.send(mtype, body)
        assert wire.sent == want, f"round {round_}"
    assert len(set(wire.sent)) == len(wire.sent)
    status = decode(wire.sent[-len(MESSAGES)], SIGNER)
    assert (status.type, status.seq, status.texts["st"], status.get_bytes("srcuuid")) == ("status", 9, "active", UUID)


def test_a_resend_is_the_original_datagram_and_heads_stay_bounded() -> None:
    now = [5.0]
    link, wire = a_link(now)
    for n in range(3 * link_module.HEAD_CACHE):      # acks carry their sequence number in the body: all distinct
        link.send("NS_ackmsg", (("dest", "server2"), ("ackseq", f"{n:x}")))
        assert len(link._heads) <= link_module.HEAD_CACHE
    link.send("status", MESSAGES[0][1])
    original = wire.sent[-1]
    link.retransmit(link.seq, link.seq)
    assert wire.sent[-1] == original


def test_a_new_generation_or_identity_is_in_the_very_next_datagram() -> None:
    now = [5.0]
    link, wire = a_link(now)
    link.send("status", MESSAGES[0][1])
    link.generation, link.uuid = 8, PEER_UUID
    link.send("status", MESSAGES[0][1])
    msg = decode(wire.sent[-1], SIGNER)
    assert (msg.hg, msg.get_bytes("srcuuid")) == (8, PEER_UUID)
