"""Who is alive: the peer's liveness, generation and sequence tracking (pure, clock injected).

Heartbeat decides death on each side alone: nothing announces it, a node is dead when it has been silent
for the dead time *it advertised* (`dt` in its status messages), or was never heard within `initdead`.
Replay protection is the pair (generation `hg`, `seq`): a lower generation is a replay, a higher one a
restart (sequence numbers begin again at 1), a dead node heard again with the same generation is a healed
partition. Lost messages are asked for again with `NS_rexmit`; every tenth sequence number is acked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .events import Action, Event, Log, PeerDead, PeerMessage, PeerRestarted, PeerReturned, PeerUp, Retransmit, Send

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


class Membership:
    """Tracks one peer. `receive` filters and interprets datagrams; `check` runs the timers."""

    def __init__(self, me: str, peer: str, *, deadtime: float, warntime: float, initdead: float,
                 now: float, nodes: tuple[str, ...] = ()) -> None:
        self.me = me
        self.peer = PeerView(peer)
        #: ha.cf's `node` names in file order: what a Heartbeat peer's `reqnodes` is answered with.
        self.nodes = tuple(n.lower() for n in nodes) or (me, peer)
        self.deadtime = deadtime
        self.warntime = warntime
        self.initdead = initdead
        self.started_at = now
        self.dropped: Counter[str] = Counter()
        self.received = 0

    # ---- configuration reload ----------------------------------------------------------------
    def retime(self, *, deadtime: float, warntime: float, initdead: float) -> None:
        self.deadtime, self.warntime, self.initdead = deadtime, warntime, initdead

    def rename_peer(self, name: str, now: float) -> None:
        """The peer's node name changed (rolling rename): forget the old identity (uuid, generation,
        sequence) so the renamed node's fresh hb_uuid is accepted. A dead peer stays dead; a live one
        is given initdead from now to show up under its new name."""
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

    def receive(self, m: Incoming, now: float) -> tuple[str | None, list[Event], list[Action]]:
        """Filter one datagram. Returns (drop reason or None, events for failover, actions)."""
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
        events: list[Event] = []
        actions: list[Action] = []
        if peer.hg is not None and m.hg < peer.hg:
            return self._dropped("replay"), [], [Log(
                "warning", "packet.replay", f"attempted replay attack [{m.src}]? [gen = {m.hg:x}, curgen = {peer.hg:x}]",
                {"src": m.src, "hg": m.hg, "known_hg": peer.hg})]
        restarted = peer.hg is not None and m.hg > peer.hg
        first = peer.hg is None
        if m.seq is not None and not restarted and not first:
            if m.seq <= peer.max_seq and m.seq not in peer.missing:
                return self._dropped("duplicate"), [], []
            if m.seq > peer.max_seq + MAX_GAP:
                return self._dropped("seq_jump"), [], []

        # ---- accepted ----
        self.received += 1
        if restarted:
            peer.missing.clear()
            peer.max_seq = 0
            peer.dt = None
            peer.last_status_at = None
            actions.append(Log("info", "peer.restart", f"Heartbeat restart on node {peer.name}",
                               {"node": peer.name, "hg": m.hg}))
        peer.hg = m.hg
        if m.srcuuid:
            peer.uuid = m.srcuuid
        was = peer.status
        peer.last_heard = now
        if m.seq is not None:
            actions += self._track_seq(m.seq, now)

        if m.type == "status":
            actions += self._on_status(m, now)
        if was == "dead" and not restarted and not first:
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
        elif restarted:
            events.append(PeerRestarted())

        if m.type == "NS_rexmit" and m.dest == self.me:
            first_seq = _int(m.fields.get("firstseq"))
            last_seq = _int(m.fields.get("lastseq"))
            if first_seq is not None and last_seq is not None and 0 < first_seq <= last_seq:
                actions.append(Retransmit(first_seq, min(last_seq, first_seq + 50)))
        elif m.type == "reqnodes" and m.dest == self.me:
            actions.append(self._repnodes())
        elif m.type == "shutdone":
            peer.status = "dead"
            actions.append(Log("info", "peer.shutdown", f"Received shutdown notice from '{peer.name}'.",
                               {"node": peer.name}))
            events.append(PeerDead(graceful=True))
        elif not m.type.startswith(_NOSEQ_PREFIX) and m.type != "status" and (m.dest in (None, self.me)):
            events.append(PeerMessage(m.type, m.fields))
        return None, events, actions

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
        if peer.last_status_at is not None:
            interval = now - peer.last_status_at
            if interval > self.warntime:
                peer.late_heartbeats += 1
                actions.append(Log("warning", "peer.late",
                                   f"Late heartbeat: Node {peer.name}: interval {round(interval * 1000)} ms",
                                   {"node": peer.name, "interval_ms": round(interval * 1000)}))
        peer.last_status_at = now
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
        """Seconds of silence after which the peer is dead: its advertised dt, else ours."""
        return self.peer.dt if self.peer.dt else self.deadtime

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


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
