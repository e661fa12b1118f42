"""Restarting an agent in place: the running agent hands its state to its successor (a new version, a
changed hbvip.cf) without releasing anything, and the successor carries on where it stopped.

`hbvip restart-in-place` asks the running agent. It refuses unless the pair is settled (no resource
work, no move under way or pending) and its peer grants a restarting node a grace (grace.py: an hbvip
peer of this version or later; Heartbeat 3.0.6 would declare us dead after its deadtime, so the role
hands the groups over with `standby` and restarts as before). Otherwise its last heartbeats say it is
restarting, it writes a `RestartRecord` and the process replaces itself with the new agent (same pid,
the service never stops: no stop or start script runs, processes the scripts started live on).

The successor continues the old agent when the record is fresh (younger than the grace the peer
granted), written under this node name and the current hb_generation, and every VIP of the groups it
held is still here: the same generation with the next sequence number, the same view of the peer and
of who holds what. Its peer sees a late heartbeat, not a restart, so nothing moves. Otherwise it starts
as always (stale VIPs removed, groups negotiated again) and logs why. Pure: the file, the exec and
the VIP check are hbvip.inplace's.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..records import asdict, dataclass
from .events import Action, Hold, Log, Op
from .grace import RESTART_GRACE
from .membership import PeerView
from .phases import Phase

if TYPE_CHECKING:
    from .moves import Handshake

#: Bumped when the record's fields change meaning: a successor never adopts a record it cannot read.
RECORD_FORMAT = 1


@dataclass(frozen=True)
class RestartRecord:
    """What the old agent hands to the new one (one JSON file, root-only, deleted when read)."""

    node: str
    peer: str
    generation: int
    seq: int                     # the last sequence number the old agent sent
    written_at: float            # wall clock
    max_age: float               # the grace the peer granted: an older record is not adopted
    held: Hold
    failed: Hold
    peer_held: Hold
    peer_stable: bool
    needs_failback: bool
    peer_status: str             # the membership's view of the peer: unknown | init | up | active | dead
    peer_hg: int | None
    peer_max_seq: int
    peer_dt: float | None
    peer_uuid: str               # hex
    groups: tuple[str, ...]      # the held groups' keys (for the log)
    version: str                 # the agent that wrote it

    def to_json(self) -> str:
        data = asdict(self)
        data.update(format=RECORD_FORMAT, held=self.held.word, failed=self.failed.word, peer_held=self.peer_held.word)
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RestartRecord:
        """Parse a record; ValueError names what is wrong (the successor then starts as always)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.pop("format", None) != RECORD_FORMAT:
                raise ValueError("not a handover record of this agent's format")
            for name in ("held", "failed", "peer_held"):
                hold = Hold.from_word(data.get(name))
                if hold is None:
                    raise ValueError(f"{name}: {data.get(name)!r} is not a resource set")
                data[name] = hold
            data["groups"] = tuple(data.get("groups", ()))
            return cls(**data)
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"not a handover record: {exc}") from exc


def stale_because(record: RestartRecord, *, node: str, peer: str, generation: int | None, now: float) -> str | None:
    """Why the successor must not continue this record (None: it may). `now` is the wall clock."""
    if record.node != node:
        return f"it was written by node {record.node}, this node is {node}"
    if record.peer != peer:
        return f"it was written for peer {record.peer}, the peer is now {peer}"
    if generation != record.generation:
        return f"hb_generation is {generation}, the record continues generation {record.generation}"
    age = now - record.written_at
    if not 0 <= age <= record.max_age:
        return f"it is {age:.1f} s old; the peer waits {record.max_age:g} s for a restart"
    return None


def resumed_peer(record: RestartRecord, now: float) -> PeerView:
    """The membership's view of the peer as the old agent left it. The peer's heartbeats of the restart
    are gone: its next sequence number is the new base (`resumed`), and it has its dead time from now."""
    return PeerView(record.peer, status=record.peer_status, last_heard=None if record.peer_status == "dead" else now,
                    dt=record.peer_dt, hg=record.peer_hg, uuid=bytes.fromhex(record.peer_uuid) or None,
                    max_seq=record.peer_max_seq, resumed=True, grants_grace=record.max_age)


class InPlaceRestart:
    """The failover machine's side of a restart in place (state declared in `Failover`)."""

    if TYPE_CHECKING:
        me: str
        peer: str
        phase: Phase
        held: Hold
        target: Hold
        failed: Hold
        peer_held: Hold
        peer_alive: bool
        peer_stable: bool
        needs_failback: bool
        busy: tuple[Op, Hold] | None
        handshake: Handshake | None
        takeover_request: tuple[int, Hold, float] | None
        reachable: bool
        eligible: Hold
        reclaim: bool
        unclaimed_at: float | None
        orphans_at: float | None
        since: dict[Hold, float]

        def _enter(self, phase: Phase) -> None: ...

    def restart_refusal(self, peer_grants: float) -> str | None:
        """Why this node must not restart in place now (None: it may). `peer_grants` is the grace the
        peer's heartbeats say it gives a restarting node (0: Heartbeat, or an hbvip without it)."""
        if self.phase is not Phase.RUNNING:
            return f"the agent is {self.phase.value}, not running"
        if self.busy is not None or self.held != self.target:
            return "a resource operation is under way"
        if self.handshake is not None or self.takeover_request is not None or self.reclaim \
                or self.unclaimed_at is not None or self.orphans_at is not None:
            return "a move between the nodes is under way or pending"
        if not self.reachable or self.held & ~self.eligible:
            return "this node is about to give up groups (ping nodes or health checks)"
        if self.peer_alive and not self.peer_stable:
            return f"{self.peer} is not settled"
        if self.peer_alive and not peer_grants:
            return (f"{self.peer} would not wait for a restart (Heartbeat, or an hbvip without restart-in-place):"
                    " hand the groups over (hbvip standby) and restart")
        return None

    def resume(self, record: RestartRecord, now: float) -> list[Action]:
        """Continue the old agent: running, holding what it held, the peer as it saw it."""
        self._enter(Phase.RUNNING)
        self.held = self.target = record.held
        self.failed, self.peer_held, self.peer_stable = record.failed, record.peer_held, record.peer_stable
        self.peer_alive = record.peer_status != "dead"
        self.needs_failback = record.needs_failback
        self.reachable = True        # the old agent reached a ping node: the next ping round confirms
        self.since = {h: now for h in (Hold.LOCAL, Hold.FOREIGN) if h & record.held}
        return [Log("info", "restart.resumed",
                    f"Restarted in place: continuing generation {record.generation}, holding {record.held.word} "
                    "resources", {"hg": record.generation, "hold": record.held.word, "groups": ",".join(record.groups),
                                  "from_version": record.version})]


def restart_record(failover: InPlaceRestart, peer: PeerView, *, generation: int, seq: int, now: float,
                   groups: tuple[str, ...], version: str) -> RestartRecord:
    """The record of a node that restarts in place now (`now`: wall clock). It may be adopted for as
    long as the peer waits (the grace it granted; a dead peer takes nothing over: the default grace)."""
    f = failover
    return RestartRecord(
        node=f.me, peer=peer.name, generation=generation, seq=seq, written_at=now,
        max_age=peer.grants_grace if f.peer_alive and peer.grants_grace else RESTART_GRACE,
        held=f.held, failed=f.failed, peer_held=f.peer_held, peer_stable=f.peer_stable, needs_failback=f.needs_failback,
        peer_status=peer.status, peer_hg=peer.hg, peer_max_seq=peer.max_seq, peer_dt=peer.dt,
        peer_uuid=(peer.uuid or b"").hex(), groups=groups, version=version)
