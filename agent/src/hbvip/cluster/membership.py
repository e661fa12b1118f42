"""Who is alive: the peer's liveness, generation and sequence tracking (pure, clock injected).

Heartbeat decides death on each side alone: nothing announces it, a node is dead when it has been silent
for the dead time *it advertised* (`dt` in its status messages), or was never heard within `initdead`.
Replay protection is the pair (generation `hg`, `seq`): a lower generation is a replay, a higher one a
restart (sequence numbers begin again at 1), a dead node heard again with the same generation and a
sequence number above the last one accepted is a healed partition. Anything not newer than what was
accepted — also after the node was declared dead — is dropped, never a sign of life. Lost messages are
asked for again with `NS_rexmit`; every tenth sequence number is acked.
"""

from __future__ import annotations

from collections import Counter

from ..records import dataclass, field
from .events import Action, Event, Log, PeerDead, PeerMessage, PeerRestarted, PeerReturned, PeerUp, Retransmit, Send
from .grace import read_grace

#: Types that carry no `seq` (Heartbeat's "NS_" = no sequence).
_NOSEQ_PREFIX = "NS_"
#: Heartbeat acks sequence numbers with seq % ACK_MSG_DIV == its trigger; we use 0.
ACK_MSG_DIV = 10
#: How long a gap may stay open before we ask for it (small reorderings are normal, see wire notes §5).
REXMIT_DELAY = 0.25
#: Ask again this often, and give up after this many requests for one message.
REXMIT_INTERVAL = 1.0
REXMIT_TRIES = 5
#: A sequence number this far ahead of what we know means a confused peer, not a gap to fill.
MAX_GAP = 200


@dataclass(frozen=True)
class Incoming:
    """The parts of an authenticated datagram that membership and failover look at."""

    type: str
    src: str
    hg: int | None
    seq: int | None
    fields: dict[str, str]
    srcuuid: bytes | None = None
    dest: str | None = None


@dataclass
class PeerView:
    """This node's knowledge of its peer, as `hbvip status` shows it."""

    name: str
    status: str = "unknown"            # unknown | init | up | active | dead
    last_heard: float | None = None
    dt: float | None = None            # the peer's advertised dead time, seconds
    hg: int | None = None
    uuid: bytes | None = None
    last_status_at: float | None = None
    late_heartbeats: int = 0
    max_seq: int = 0
    missing: dict[int, list[float]] = field(default_factory=dict)   # seq -> [noticed, last_asked, tries]
    acked: dict[str, int] = field(default_factory=dict)   # NS_ackmsg dest -> highest ackseq taken
    sent_at: int | None = None         # the `ts` (its wall clock, s) of its newest message that was a sign of life
    grants_grace: float = 0.0          # how long it waits for us to restart in place (0: it would not)
    grace: float = 0.0                 # it is restarting in place: the silence it is given, seconds
    resumed: bool = False              # we restarted in place: its next sequence number is the new base


class Membership:
    """Tracks one peer. `receive` filters and interprets datagrams; `check` runs the timers."""

    def __init__(self, me: str, peer: str, *, deadtime: float, warntime: float, initdead: float,
                 now: float, nodes: tuple[str, ...] = ()) -> None:
        self.me = me
        self.peer = PeerView(peer)
        #: ha.cf's `node` names in file order: what a Heartbeat peer's `reqnodes` is answered with.
        self.nodes = tuple(n.lower() for n in nodes) or (me, peer)
        self.deadtime, self.warntime, self.initdead = deadtime, warntime, initdead
        self.started_at = now
        self.dropped: Counter[str] = Counter()
        self.received = 0

    # ---- configuration reload ----------------------------------------------------------------
    def retime(self, *, deadtime: float, warntime: float, initdead: float) -> None:
        self.deadtime, self.warntime, self.initdead = deadtime, warntime, initdead

    def rename_peer(self, name: str, now: float) -> None:
        """The peer was renamed (rolling rename): forget its old identity so the fresh hb_uuid is accepted.
        A dead peer stays dead; a live one is given initdead from now to show up under its new name."""
        was_dead = self.peer.status == "dead"
        old = self.peer.name.lower()
        self.nodes = tuple(name.lower() if n == old else n for n in self.nodes)
        self.peer = PeerView(name, status="dead" if was_dead else "unknown")
        if not was_dead:
            self.started_at = now

    # ---- input -------------------------------------------------------------------------------
    def drop(self, reason: str) -> None:
        """Count a datagram dropped before it reached us (bad HMAC, malformed...)."""
        self.dropped[reason] += 1

    def receive(self, m: Incoming, now: float, *, sent_seq: int | None = None
                ) -> tuple[str | None, list[Event], list[Action]]:
        """Filter one datagram. Returns (drop reason or None, events for failover, actions).
        `sent_seq`: our highest sequence number sent in this generation (None: not known).

        Only a datagram that is provably new is a sign of life: a higher generation (the peer
        restarted), or the same generation with a sequence number above every one accepted so far.
        Everything else a recording of the link could contain — an older generation, a sequence number
        already accepted, a seq-less `NS_` message — is either dropped or, for a gap the peer is
        filling at our request, used for its content only. Otherwise a few seconds of captured
        traffic, resent after the peer died, would keep it "alive" and delay the takeover."""
        peer = self.peer
        if m.src == self.me:
            # ucast also delivers our own messages back over lo when our address is listed.
            return self._dropped("own"), [], []
        if m.src != peer.name:
            return self._dropped("unknown_node"), [], [Log(
                "warning", "packet.unknown_node", f"Received packet from unknown node [{m.src}]",
                {"src": m.src})]
        if m.hg is None:
            return self._dropped("malformed"), [], []
        if peer.hg is not None and m.hg < peer.hg:
            return self._dropped("replay"), [], [Log(
                "warning", "packet.replay", f"attempted replay attack [{m.src}]? [gen = {m.hg:x}, curgen = {peer.hg:x}]",
                {"src": m.src, "hg": m.hg, "known_hg": peer.hg})]
        if m.seq is None:
            return self._unsequenced(m, sent_seq)
        restarted = peer.hg is not None and m.hg > peer.hg
        first = peer.hg is None
        fresh = first or restarted or m.seq > peer.max_seq
        if not fresh and m.seq not in peer.missing:
            return self._stale(m)
        if fresh and not first and not restarted and peer.status != "dead" and not peer.resumed \
                and m.seq > peer.max_seq + MAX_GAP:
            return self._dropped("seq_jump"), [], []

        # ---- accepted ----
        self.received += 1
        if not fresh:
            # A gap we asked for (or a small reordering): its content counts, but not as a sign of life,
            # since a recording holds the original of every message the gap is made of.
            del peer.missing[m.seq]
            actions: list[Action] = []
            if not peer.missing:
                actions.append(Log("info", "packet.gap_closed", f"No pkts missing from {peer.name}!",
                                   {"node": peer.name}))
            return None, self._content(m), actions
        return None, *self._sign_of_life(m, now, restarted=restarted, first=first)

    def _sign_of_life(self, m: Incoming, now: float, *, restarted: bool, first: bool
                      ) -> tuple[list[Event], list[Action]]:
        """A provably new datagram: the peer is alive now."""
        peer = self.peer
        assert m.seq is not None
        events: list[Event] = []
        actions: list[Action] = []
        was = peer.status
        healed = was == "dead" and not restarted and not first
        if restarted:
            peer.missing.clear()
            peer.max_seq = 0
            peer.dt, peer.grace = None, 0.0
            peer.last_status_at = None
            peer.acked.clear()
            actions.append(Log("info", "peer.restart", f"Heartbeat restart on node {peer.name}",
                               {"node": peer.name, "hg": m.hg}))
        if healed or peer.resumed:
            # The messages sent during the partition (or our restart) are none of our business now.
            peer.max_seq, peer.resumed = m.seq, False
        peer.hg, peer.sent_at = m.hg, _int(m.fields.get("ts"), 16)
        if m.srcuuid:
            peer.uuid = m.srcuuid
        peer.last_heard = now
        actions += self._track_seq(m.seq, now)

        if m.type == "status":
            actions += self._on_status(m, now)
        if healed or peer.resumed:
            actions.append(Log("warning", "peer.returned",
                               f"Cluster node {peer.name} returning after partition.", {"node": peer.name}))
            if peer.status == "dead":
                peer.status = "up"
            events.append(PeerReturned())
        elif was in ("unknown", "dead") or restarted:
            if peer.status in ("unknown", "dead"):
                peer.status = "up"
            actions.append(Log("info", "link.up", f"Link {peer.name}: up.", {"node": peer.name}))
            if restarted:
                events.append(PeerRestarted())
            events.append(PeerUp())

        if m.type == "reqnodes" and m.dest == self.me:
            actions.append(self._repnodes())
        elif m.type == "shutdone":
            peer.status = "dead"
            actions.append(Log("info", "peer.shutdown", f"Received shutdown notice from '{peer.name}'.",
                               {"node": peer.name}))
            events.append(PeerDead(graceful=True))
        else:
            events += self._content(m)
        return events, actions

    def _content(self, m: Incoming) -> list[Event]:
        """What failover must see of an accepted sequenced datagram: the cluster messages for us."""
        if (m.type not in ("status", "reqnodes", "shutdone") and not m.type.startswith(_NOSEQ_PREFIX)
                and m.dest in (None, self.me)):
            return [PeerMessage(m.type, m.fields)]
        return []

    def _unsequenced(self, m: Incoming, sent_seq: int | None) -> tuple[str | None, list[Event], list[Action]]:
        """A seq-less `NS_` datagram (ack, retransmission request): never a sign of life, acted on only
        while the peer is alive in this very generation, an ack once. Stale if sent (`ts`, 1 s steps)
        before the peer's newest sign of life or naming a number we have not sent: after our restart a
        recording holds those of our previous generation, in the peer's current one."""
        peer = self.peer
        if peer.status in ("unknown", "dead") or m.hg != peer.hg:
            return self._stale(m)
        if (sent_at := _int(m.fields.get("ts"), 16)) is not None and sent_at < (peer.sent_at or 0) - 1:
            return self._stale(m)
        if m.type == "NS_ackmsg":
            ackseq = _int(m.fields.get("ackseq"), 16)
            target = m.dest or ""
            if ackseq is None or ackseq <= peer.acked.get(target, 0):
                return self._dropped("duplicate"), [], []
            if target == self.me and sent_seq is not None and ackseq > sent_seq:
                return self._stale(m)
            peer.acked[target] = ackseq
        actions: list[Action] = []
        if m.type == "NS_rexmit" and m.dest == self.me:
            first_seq = _int(m.fields.get("firstseq"))
            last_seq = _int(m.fields.get("lastseq"))
            if first_seq is not None and last_seq is not None and 0 < first_seq <= last_seq:
                if sent_seq is not None and first_seq > sent_seq:
                    return self._stale(m)
                actions.append(Retransmit(first_seq, min(last_seq, first_seq + 50)))
        self.received += 1
        return None, [], actions

    def _stale(self, m: Incoming) -> tuple[str, list[Event], list[Action]]:
        """Same generation, nothing new. From a live peer that is a network duplicate; from a peer we
        declared dead (or never heard in this generation) it can only be a recording played back."""
        peer = self.peer
        if peer.status not in ("unknown", "dead"):
            return self._dropped("duplicate"), [], [Log(
                "debug", "packet.duplicate", None,
                {"src": m.src, "type": m.type, "seq": m.seq, "max_seq": peer.max_seq})]
        seq = "none" if m.seq is None else f"{m.seq:x}"
        return self._dropped("replay"), [], [Log(
            "warning", "packet.replay",
            f"attempted replay attack [{m.src}]? [gen = {m.hg:x}, seq = {seq}, last seq = {peer.max_seq:x}, "
            f"node {peer.status}]",
            {"src": m.src, "type": m.type, "hg": m.hg, "seq": m.seq, "max_seq": peer.max_seq,
             "peer_state": peer.status})]

    def _repnodes(self) -> Send:
        """Answer a joining Heartbeat's `reqnodes`: it only goes `active` (Comm_now_up) after this reply,
        and it drops every configured node missing from `nodelist`, so the list is the whole `node` set."""
        return Send("repnodes", (("dest", self.peer.name), ("nodelist", "".join(n + " " for n in self.nodes)),
                                 ("delnodelist", " ")))

    def _dropped(self, reason: str) -> str:
        self.dropped[reason] += 1
        return reason

    def _on_status(self, m: Incoming, now: float) -> list[Action]:
        peer = self.peer
        actions: list[Action] = []
        interval = now - (peer.last_status_at if peer.last_status_at is not None else now)
        if interval > self.warntime and not peer.grace:
            peer.late_heartbeats += 1
            actions.append(Log("warning", "peer.late",
                               f"Late heartbeat: Node {peer.name}: interval {round(interval * 1000)} ms",
                               {"node": peer.name, "interval_ms": round(interval * 1000)}))
        peer.last_status_at = now
        peer.grants_grace, peer.grace, notes = read_grace(peer.name, m.fields, peer.grace, self.dead_after(), interval)
        actions += notes
        dt = m.fields.get("dt")
        if dt:
            try:
                peer.dt = int(dt, 16) / 1000.0
            except ValueError:
                pass
        st = m.fields.get("st")
        if st in ("init", "up", "active") and st != peer.status:
            actions.append(Log("info", "peer.status", f"Status update for node {peer.name}: status {st}",
                               {"node": peer.name, "status": st}))
            peer.status = st
        return actions

    def _track_seq(self, seq: int, now: float) -> list[Action]:
        peer = self.peer
        actions: list[Action] = []
        if seq in peer.missing:
            del peer.missing[seq]
            if not peer.missing:
                actions.append(Log("info", "packet.gap_closed", f"No pkts missing from {peer.name}!",
                                   {"node": peer.name}))
        elif seq > peer.max_seq:
            if peer.max_seq and seq > peer.max_seq + 1:
                for s in range(peer.max_seq + 1, seq):
                    peer.missing[s] = [now, 0.0, 0]
                actions.append(Log("warning", "packet.gap",
                                   f"{seq - peer.max_seq - 1} lost packet(s) for [{peer.name}] "
                                   f"[{peer.max_seq}:{seq}]", {"node": peer.name}))
            peer.max_seq = seq
        if seq % ACK_MSG_DIV == 0:
            actions.append(Send("NS_ackmsg", (("dest", peer.name), ("ackseq", f"{seq:x}"))))
        return actions

    # ---- timers ------------------------------------------------------------------------------
    def dead_after(self) -> float:
        """Seconds of silence after which the peer is dead: its advertised dt, else ours (or its grace)."""
        return max(self.peer.dt or self.deadtime, self.peer.grace)

    def check(self, now: float) -> tuple[list[Event], list[Action]]:
        peer = self.peer
        events: list[Event] = []
        actions: list[Action] = []
        if peer.status == "unknown" and now - self.started_at >= self.initdead:
            peer.status = "dead"
            actions.append(Log("warning", "peer.dead", f"node {peer.name}: is dead",
                               {"node": peer.name, "reason": "initdead", "after_ms": round(self.initdead * 1000)}))
            events.append(PeerDead())
        elif (peer.status not in ("unknown", "dead") and peer.last_heard is not None
              and now - peer.last_heard >= self.dead_after()):
            silent = now - peer.last_heard
            peer.status = "dead"
            peer.missing.clear()
            actions.append(Log("warning", "peer.dead", f"node {peer.name}: is dead",
                               {"node": peer.name, "after_ms": round(silent * 1000)}))
            actions.append(Log("info", "link.dead", f"Link {peer.name}: dead.", {"node": peer.name}))
            events.append(PeerDead())
        if peer.missing and peer.status != "dead":
            actions += self._ask_missing(now)
        return events, actions

    def _ask_missing(self, now: float) -> list[Action]:
        peer = self.peer
        actions: list[Action] = []
        for seq in sorted(peer.missing):
            noticed, asked, tries = peer.missing[seq]
            if now - noticed < REXMIT_DELAY or (tries and now - asked < REXMIT_INTERVAL):
                continue
            if tries >= REXMIT_TRIES:
                del peer.missing[seq]
                actions.append(Log("warning", "packet.lost", f"lost packet {seq} from {peer.name} given up",
                                   {"node": peer.name, "seq": seq}))
                continue
            peer.missing[seq] = [noticed, now, tries + 1]
            body: tuple[tuple[str, str | bytes], ...] = (
                ("dest", peer.name), ("firstseq", str(seq)), ("lastseq", str(seq)))
            if peer.uuid:
                body += (("destuuid", peer.uuid),)
            actions.append(Send("NS_rexmit", body))
        return actions

    def next_deadline(self) -> float:
        peer = self.peer
        if peer.status == "unknown":
            t = self.started_at + self.initdead
        elif peer.status == "dead" or peer.last_heard is None:
            t = float("inf")
        else:
            t = peer.last_heard + self.dead_after()
        for noticed, asked, tries in peer.missing.values():
            t = min(t, noticed + REXMIT_DELAY if not tries else asked + REXMIT_INTERVAL)
        return t


def _int(value: str | None, base: int = 10) -> int | None:
    try:
        return int(value, base) if value is not None else None
    except ValueError:
        return None
