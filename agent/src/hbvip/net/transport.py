"""UDP transport for heartbeat datagrams, laid out like Heartbeat's `ucast`/`bcast`/`mcast` media.

One receive socket on 0.0.0.0:udpport takes datagrams from every medium (and one on [::]:udpport when
ha.cf has `ucast6` lines, as Heartbeat's ucast6 listens); sending uses one socket per interface and
address family named in ha.cf, bound to that device (SO_BINDTODEVICE) as Heartbeat's ucast does, so a
heartbeat leaves by the link the operator chose even when routing would pick another one. A multicast
group (`mcast`, `mcast6`) has its own send socket (interface, hop limit, loop) and is joined on its
interface by the receive socket of its family and port, which is opened for it if needed.

Both nodes run the same ha.cf (`ucast eth0 server1` and `ucast eth0 server2`), so a ucast address that
belongs to this host is dropped at start: a node never heartbeats itself. Sending never raises: an
unreachable peer is exactly the situation the cluster layer must observe, so errors are counted.
Who sent a datagram and whether it is genuine is the wire layer's business, not this one's.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import termios
import time
from collections.abc import Callable, Mapping, Sequence

from hbvip.config.values import ipv4, ipv6
from hbvip.net import multicast
from hbvip.net.ifaddr import addresses_now, interface_index
from hbvip.net.quiet import (
    DRAIN_BATCH, FLOOD_HOLDOFF, QuietLane, arrival_fields, receive_socket,
)
from hbvip.records import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing before the first heartbeat
if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

#: A multicast medium: (group, interface, port, hops, loop).
Multicast = tuple[str, str, int, int, int]


class TransportError(Exception):
    """The transport cannot start: a peer name does not resolve, a bcast interface has no address."""


@dataclass(frozen=True)
class _Target:
    """One place heartbeats are sent to: a peer, a broadcast address or a multicast group."""
    address: str
    interface: str | None
    broadcast: bool = False
    port: int | None = None
    """A multicast line's own port (None: the transport's)."""
    hops: int | None = None
    """A multicast group's hop limit (TTL); None for unicast and broadcast."""
    loop: int = 0

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.address else socket.AF_INET

    @property
    def key(self) -> tuple:
        """The send socket this target uses: one per interface and family, one per multicast group."""
        if self.hops is None:
            return (self.interface, self.family)
        return (self.interface, self.family, self.address, self.port)

    @property
    def scoped(self) -> bool:
        """A link-local IPv6 peer: its interface's index (the scope) is looked up at each send, as an
        interface that is re-created gets a new one."""
        return self.address.startswith("fe80:")

    def sockaddr(self, port: int) -> tuple:
        """Where `sendto` sends: a link-local IPv6 peer is reached through the line's interface (scope)."""
        port = self.port or port
        if self.family == socket.AF_INET:
            return (self.address, port)
        scope = interface_index(self.interface or "") if self.scoped else 0
        return (self.address, port, 0, scope or 0)


#: Receive buffer: the largest UDP payload, so a datagram is never truncated (the daemon counts an
#: oversized one itself) and one buffer serves every datagram.
_RECV_SIZE = 65536
#: Datagrams read per readiness callback at most.
_RECV_BATCH = 32
_ANC_SIZE = socket.CMSG_SPACE(20)
_NOTHING = bytes(4)  # FIONREAD's int when no datagram is queued


class Transport:
    """Send to every configured peer, deliver every datagram received on `port` to `on_datagram`.

    `peers` are (address-or-hostname, interface-or-None) pairs from ha.cf `ucast` lines;
    `broadcast_interfaces` are the interfaces of `bcast` lines (sent to that interface's broadcast
    address); `multicast` the groups of `mcast`/`mcast6` lines. Names are resolved and own addresses
    dropped in `open()`, so `peer_addresses` is filled from then on.

    `open()` needs no event loop (the agent sends its first heartbeats before it imports asyncio);
    `listen(loop)` then hands the receive sockets to the loop. `start()` does both in a running loop.
    """

    def __init__(
        self,
        port: int,
        peers: Sequence[tuple[str, str | None]],
        on_datagram: Callable[[bytes, tuple[str, int]], None],
        *,
        broadcast_interfaces: Sequence[str] = (),
        multicast: Sequence[Multicast] = (),
    ) -> None:
        self.port = port
        self.peers = tuple(peers)
        self.broadcast_interfaces = tuple(broadcast_interfaces)
        self.multicast = tuple(multicast)
        self.on_datagram = on_datagram
        self.peer_addresses: list[str] = []
        self.counters: dict[str, int] = {"sent": 0, "send_errors": 0, "received": 0, "receive_errors": 0}
        self._routes: list[tuple[socket.socket, _Target, tuple | None]] = []
        """Per target: its send socket and its `sockaddr`, None where it is looked up per datagram."""
        self._send_sockets: dict[tuple, socket.socket] = {}
        self._receivers: list[socket.socket] = []
        self._buffer = bytearray(_RECV_SIZE)
        self._view = memoryview(self._buffer)
        self._pending = bytearray(4)
        self.arrival_interface: str | None = None
        """The interface the datagram being delivered to `on_datagram` arrived on (its path)."""
        self.arrival_time: float | None = None
        """When the datagram being delivered arrived (monotonic), if it waited in a quiet lane; None: now."""
        self._steerable: list[socket.socket] = []
        self._lanes: dict[int, QuietLane] = {}
        self._routine: dict[str, bytes] = {}
        self._drained_at = float("-inf")
        self._steer_after = float("-inf")      # a flooded lane closed: not before then again
        self._names: dict[int, str] = {}
        self._loop: AbstractEventLoop | None = None

    async def start(self) -> None:
        """`open()` and `listen()` in the running loop (a reload): names resolve in a thread meanwhile."""
        import asyncio  # pylint: disable=import-outside-toplevel  # loaded by whoever runs the loop

        loop = asyncio.get_running_loop()
        resolved = {host: await loop.run_in_executor(None, self._resolve, host)
                    for host, _unused in self.peers if _numeric(host) is None}
        self.open(resolved)
        self.listen(loop)

    def open(self, resolved: Mapping[str, str] | None = None) -> None:
        """Resolve peers (unless `resolved` has them), open the receive socket(s) on 0.0.0.0:port ([::]:port
        too for IPv6 peers) and the per-interface send sockets. Sending works from here on, receiving
        once `listen()` ran. A name is resolved here by the C library, blocking, as Heartbeat's ucast
        does at start; a number needs no resolver."""
        own = addresses_now()
        own_addresses = {a.address for a in own}
        targets: list[_Target] = []
        for host, interface in self.peers:
            address = (resolved or {}).get(host) or self._resolve(host)
            target = _Target(address, interface)
            if address not in own_addresses and target not in targets:
                targets.append(target)
        for interface in self.broadcast_interfaces:
            broadcasts = sorted({a.broadcast for a in own if a.ifname == interface and a.broadcast})
            if not broadcasts:
                raise TransportError(f"bcast {interface}: the interface has no IPv4 broadcast address")
            targets.append(_Target(broadcasts[0], interface, broadcast=True))
        for group, interface, port, hops, loop in self.multicast:
            if interface_index(interface) is None:
                raise TransportError(f"multicast {group} on {interface}: there is no interface {interface}")
            targets.append(_Target(group, interface, port=port, hops=hops, loop=loop))
        self.peer_addresses = [t.address for t in targets if not t.broadcast and t.hops is None]
        try:
            self._routes = [(self._open_send_socket(t), t, None if t.scoped else t.sockaddr(self.port))
                            for t in targets]
            self._open_receivers(targets)
        except BaseException:
            self.close()
            raise

    def listen(self, loop: AbstractEventLoop) -> None:
        """Deliver datagrams from now on, from `loop` (the agent's, which `close()` then leaves)."""
        self._loop = loop
        for sock in self._receivers:
            loop.add_reader(sock, self._read_ready, sock)

    def send(self, data: bytes) -> None:
        """Send `data` once to every target; failures are counted in `send_errors`, never raised."""
        for sock, target, sockaddr in self._routes:
            try:
                sock.sendto(data, sockaddr or target.sockaddr(self.port))
                self.counters["sent"] += 1
            except OSError:
                self.counters["send_errors"] += 1

    def steer(self, kind: str, prefix: bytes) -> bool:
        """Leave the peer's datagrams of type `kind` that start with `prefix` (the stable start of its last
        one) in quiet lanes until `drain_quiet`, as well as those of the other kinds steered so far (see
        hbvip.net.quiet). False: this transport cannot (broadcast or multicast media, the kernel refused,
        a flood a minute ago), and every datagram wakes the loop as before."""
        if not self._steerable or time.monotonic() < self._steer_after:
            return False
        self._routine[kind] = prefix
        prefixes = tuple(self._routine.values())
        try:
            for sock in self._steerable:
                lane = self._lanes.get(sock.fileno())
                if lane is None:
                    lane = self._lanes[sock.fileno()] = QuietLane(sock.family, self.port, self._view)
                    self._drained_at = time.monotonic()
                if lane.steered != prefixes:
                    lane.steer(prefixes)
        except (OSError, ValueError):
            self.drain_quiet()
            self._close_lanes()
            self._steerable.clear()
            return False
        return True

    def drain_quiet(self) -> None:
        """Deliver what waits in the quiet lanes, each datagram with its arrival time (`arrival_time`)."""
        if not self._lanes:
            return
        since, self._drained_at = self._drained_at, time.monotonic()
        for lane in list(self._lanes.values()):
            if lane.drain(self._deliver_quiet, since) >= DRAIN_BATCH:    # flooded: see DRAIN_BATCH
                self._close_lanes()
                self._steer_after = self._drained_at + FLOOD_HOLDOFF
                return

    def _deliver_quiet(self, data: bytes, addr: tuple, index: int | None, at: float) -> None:
        self.counters["received"] += 1
        self.arrival_interface = None if index is None else self._name_of(index)
        self.arrival_time = at
        try:
            self.on_datagram(data, addr)
        finally:
            self.arrival_time = None

    def _close_lanes(self) -> None:
        """No quiet lane any more: the group's program then finds no second socket, and the kernel gives
        every datagram to the watched one. What a closed lane still held is gone, as a full buffer's is."""
        for lane in self._lanes.values():
            lane.close()
        self._lanes.clear()

    def close(self) -> None:
        """Close every socket; safe to call twice."""
        self._close_lanes()
        for receiver in self._receivers:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(receiver)
            receiver.close()
        self._receivers.clear()
        self._routes.clear()
        for sock in self._send_sockets.values():
            sock.close()
        self._send_sockets.clear()

    def _resolve(self, host: str) -> str:
        """A `ucast6` peer is a numeric IPv6 address already; a `ucast` peer an IPv4 address or a name.
        The name goes to getaddrinfo as bytes: a str would import the idna codec for nothing."""
        if (address := _numeric(host)) is not None:
            return address
        try:
            infos = socket.getaddrinfo(host.encode() if host.isascii() else host, self.port,
                                       family=socket.AF_INET, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise TransportError(f"ucast peer {host!r} does not resolve to an IPv4 address: {exc}") from exc
        return infos[0][4][0]

    def _open_send_socket(self, target: _Target) -> socket.socket:
        """The send socket `target` uses (one per interface and family, see `_Target.key`), set up for it."""
        sock = self._send_sockets.get(target.key)
        if sock is None:
            sock = socket.socket(target.family, socket.SOCK_DGRAM)
            self._send_sockets[target.key] = sock
            sock.setblocking(False)
            if target.interface:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, target.interface.encode())
        if target.broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if target.hops is not None:
            multicast.set_sender(sock, target.family, interface_index(target.interface or "") or 0,
                                 target.hops, target.loop)
        return sock

    def _open_receivers(self, targets: list[_Target]) -> None:
        """0.0.0.0:port always, [::]:port for IPv6 peers, and one per other family and port a multicast
        group needs; each group is joined on its interface by the receiver of its family and port."""
        wanted = [(socket.AF_INET, self.port)]
        if any(t.family == socket.AF_INET6 and t.hops is None for t in targets):
            wanted.append((socket.AF_INET6, self.port))
        unicast = len(wanted)       # only unicast receivers get quiet lanes: see hbvip.net.quiet
        groups = [t for t in targets if t.hops is not None]
        wanted += [(t.family, t.port or self.port) for t in groups]
        receivers = {key: self._open_receiver(*key) for key in dict.fromkeys(wanted)}
        if not self.broadcast_interfaces and not groups:
            self._steerable = self._receivers[:unicast]
        for t in groups:
            try:
                multicast.join(receivers[t.family, t.port or self.port], t.address, interface_index(t.interface or "") or 0)
            except OSError as exc:
                raise TransportError(f"cannot join multicast group {t.address} on {t.interface}: {exc.strerror}") from exc

    def _open_receiver(self, family: socket.AddressFamily, port: int) -> socket.socket:
        """A plain reader callback instead of asyncio's datagram transport: that one allocates a 256 KiB
        buffer per datagram and goes through a protocol object; here one buffer is reused and each
        datagram costs one `bytes` of its own size. It is the first socket of the group a quiet lane
        may join (`steer`)."""
        try:
            sock = receive_socket(family, port)
        except OSError as exc:
            raise TransportError(_bind_failure(port, exc)) from exc
        self._receivers.append(sock)
        return sock

    def _read_ready(self, sock: socket.socket) -> None:
        """Deliver what is queued, up to `_RECV_BATCH` datagrams: one wake-up serves a burst (a flood
        then costs far less loop overhead per datagram) without starving the loop's timers. Whether
        another datagram waits is asked with FIONREAD (the size of the next one, 0: none), not with a
        read that fails: a heartbeat's wake-up then costs one read, not a second one raising EAGAIN.
        The quiet lanes go first: what waits there arrived before."""
        self.drain_quiet()
        for _unused in range(_RECV_BATCH):
            try:
                size, ancillary, _flags, addr = sock.recvmsg_into([self._buffer], _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counters["receive_errors"] += 1
                return
            self.counters["received"] += 1
            self.arrival_interface = self._interface_of(ancillary)
            self.on_datagram(bytes(self._view[:size]), addr)
            if not self._queued(sock):
                return

    def _queued(self, sock: socket.socket) -> bool:
        try:
            fcntl.ioctl(sock, termios.FIONREAD, self._pending)
        except OSError:
            return True   # let the next read say what is wrong
        return self._pending != _NOTHING

    def _interface_of(self, ancillary: list[tuple[int, int, bytes]]) -> str | None:
        """The arrival interface (IP_PKTINFO, IPV6_PKTINFO): the datagram's path."""
        index, _stamp = arrival_fields(ancillary)
        return None if index is None else self._name_of(index)

    def _name_of(self, index: int) -> str | None:
        if index not in self._names:
            try:
                self._names[index] = socket.if_indextoname(index)
            except OSError:
                return None
        return self._names[index]


def _numeric(host: str) -> str | None:
    """A numeric peer address as getaddrinfo would give it back, or None for a name."""
    address = ipv6(host) or ipv4(host)
    return None if address is None else str(address)


def _bind_failure(port: int, exc: OSError) -> str:
    """What to fix when the heartbeat port cannot be bound: the two causes operators meet have one fix each."""
    if exc.errno == errno.EACCES:
        need = "CAP_NET_BIND_SERVICE (ports below 1024)" if port < 1024 else "permission"
        return f"cannot listen on UDP {port}: {exc.strerror} — the agent needs {need}; run it as root or grant it"
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot listen on UDP {port}: {exc.strerror} — another heartbeat daemon (Heartbeat, a second "
                f"hbvip) already listens there; stop it or set `udpport` in ha.cf")
    return f"cannot listen on UDP {port}: {exc.strerror}"
