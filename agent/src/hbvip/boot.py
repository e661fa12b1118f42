"""Start-up up to the first heartbeats, before the agent imports asyncio (`hbvip run`, then hbvip.daemon).

A start is timed by its first heartbeat: it tells the peer we are up (`init`, `up`) and, after a
restart, is what the peer's hand-back waits for. Most of the time to it is imports, and the event loop
(asyncio) and the decision machinery (`hbvip.node`, `hbvip.cluster`) are most of the imports. None of
them is needed to send: the config, the wire and a plain socket are. So `boot` logs the start, reads
the identity, opens the sockets (the host's addresses read with one netlink dump, peer names resolved
by the C library) and sends; `hbvip.daemon` then imports the rest, starts the removal of stale VIPs
and the loop, and reads the first datagram. Nothing arrives unread: the receive socket queues it.

The peer counts its deadtime from our `up`, and loading the rest takes longer than a short deadtime
(40 ms at the floor): `Beating` keeps sending `up` every keepalive from a thread until the loop's own
turns take over, as the node's first turns would (the same message, on the same keepalive grid).
"""

from __future__ import annotations

import sys

from . import __version__
from .clock import SYSTEM_CLOCK
from .config import Config
from .dirs import Paths
from .link import Link, status_body, transport_for
from .log import EventLog
from .net.transport import TransportError
from .records import dataclass
from .wire import Signer
from .wire.identity import current_generation, increment_generation, load_or_create_uuid, record_uuid_host, uuid_host

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing before the first heartbeat
if TYPE_CHECKING:
    from .cluster.inplace import RestartRecord


def _before_the_node(data: bytes, addr: tuple[str, int]) -> None:
    """The transport's datagram callback until the daemon gives it the node's: it is never called, since
    the loop reads the receive socket only once the node is built (a datagram waits in the socket)."""


@dataclass
class Booted:
    """What the start-up made, for the daemon. `failed`: the transport could not start (logged, said on
    stderr); the daemon then only removes stale VIPs and exits 1."""

    config: Config
    paths: Paths
    log: EventLog
    link: Link
    started: float
    """When the agent started (monotonic), for `hbvip status`."""
    up_at: float = 0.0
    """When the `up` heartbeat went out: the keepalive grid starts there."""
    failed: bool = False
    record: RestartRecord | None = None
    """The agent restarted in place that this start continues (hbvip.cluster.inplace), or None."""

    @property
    def word(self) -> str:
        """What our heartbeats say until the node runs: `up`, or `active` when continuing a running agent."""
        return "up" if self.record is None else "active"


def boot(config: Config, paths: Paths, *, log_stderr: bool = False) -> Booted:
    """Log the start, read the identity, open the transport, send `init` and `up`."""
    clock = SYSTEM_CLOCK
    hacf = config.hacf
    log = EventLog(config.node_name, logfile=hacf.logfile, debugfile=hacf.debugfile, logfacility=hacf.logfacility,
                   stderr=log_stderr or not (hacf.logfile or hacf.debugfile), debug=bool(hacf.debug))
    started = clock.monotonic()
    log("info", "start", f"Configuration validated. Starting hbvip {__version__}",
        {"node": config.node_name, "peer": config.peers[0], "version": __version__})
    link = Link(config.node_name, Signer.from_authkeys(config.authkeys), clock)
    record = _record_to_continue(config, paths, log) if paths.restart_record.exists() else None
    _identity(config, paths, log, link, record)
    booted = Booted(config, paths, log, link, started, record=record)
    link.transport = transport_for(config, _before_the_node)
    try:
        link.transport.open()
    except TransportError as exc:   # e.g. no CAP_NET_BIND_SERVICE: say the fix, not a traceback
        log("error", "transport.failed", str(exc), {"port": hacf.udpport})
        print(f"hbvip: {exc}", file=sys.stderr)
        booted.failed = True
        return booted
    log("info", "transport.up", None, {"port": hacf.udpport, "peers": ",".join(link.peer_addresses)})
    for word in ("init", "up") if record is None else ("active",):
        link.send("status", status_body(config, word))
    booted.up_at = clock.monotonic()
    return booted


class Beating:
    """`with Beating(booted):` load the rest of the agent while a thread sends `booted.word` every keepalive.

    The link is the thread's alone meanwhile: the main thread only imports. Leaving the block stops
    the thread before anything else may send; `booted.up_at` is then the last beat, where the node's
    keepalive grid continues."""

    def __init__(self, booted: Booted) -> None:
        import threading  # pylint: disable=import-outside-toplevel  # after the first heartbeat, not before

        self.booted = booted
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hbvip-boot-beat", daemon=True)

    def __enter__(self) -> Beating:
        if not self.booted.failed:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        booted = self.booted
        clock, keepalive = booted.link.clock, booted.config.hacf.timers.keepalive
        while not self._stop.wait(max(0.0, booted.up_at + keepalive - clock.monotonic())):
            booted.link.send("status", status_body(booted.config, booted.word))
            booted.up_at = clock.monotonic()


def _record_to_continue(config: Config, paths: Paths, log: EventLog) -> RestartRecord | None:
    """The record of a restart in place this start continues, or None (then it starts as always). A
    record is continued only when fresh, meant for this node and generation, and every VIP of the groups
    it held is still here. Only a start that finds the file imports what reading it needs."""
    # pylint: disable=import-outside-toplevel
    from .cluster.groups import groups_of
    from .cluster.inplace import stale_because
    from .inplace import take_record
    from .net.ifaddr import addresses_now
    from .net.vip import placed_in
    record, why = take_record(paths.restart_record)
    if record is not None:
        why = stale_because(record, node=config.node_name, peer=config.peers[0], now=SYSTEM_CLOCK.wall(),
                            generation=current_generation(paths.state_dir))
    if record is not None and why is None:
        try:
            here = addresses_now()
        except OSError:
            here = []
        missing = [vip.address for g in groups_of(config.groups, config.node_name, record.held) for vip in g.vips
                   if placed_in(vip, here) is None]
        why = f"VIP {', '.join(missing)} is no longer on this host" if missing else None
    if why is None:
        return record
    log("warning", "restart.not_resumed", f"Not continuing the agent restarted in place: {why}; starting as "
        "after a stop", {"reason": why})
    return None


def _identity(config: Config, paths: Paths, log: EventLog, link: Link, record: RestartRecord | None) -> None:
    """Our hb_uuid (made once per state dir) and this start's generation, as Heartbeat keeps them."""
    state_dir = paths.state_dir
    link.uuid, created = load_or_create_uuid(state_dir)
    made_under = uuid_host(state_dir)
    if created:
        log("info", "uuid.created", "No uuid found for current node - generating a new uuid.")
        record_uuid_host(state_dir, config.node_name)
    elif made_under and made_under != config.node_name:
        log("warning", "uuid.other_host",
            f"hb_uuid in {state_dir} was made under hostname {made_under!r}, this node is "
            f"{config.node_name!r}: the peer may reject it as a replay; delete hb_uuid after a rename",
            {"made_under": made_under, "node": config.node_name})
    elif not made_under:
        record_uuid_host(state_dir, config.node_name)
    if record is not None:        # the agent before us, restarted in place: same generation, next seq
        link.generation, link.seq = record.generation, record.seq
    else:
        link.generation = increment_generation(state_dir)
    log("info", "generation", f"Heartbeat generation: {link.generation}", {"hg": link.generation})
