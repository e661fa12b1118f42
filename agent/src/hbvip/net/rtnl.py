"""One long-lived rtnetlink session for the whole agent, driven by the asyncio loop.

Taking over a group used to open a fresh pyroute2 `AsyncIPRoute` about three times per VIP, each with
a link and an address dump: 64 VIPs took 5.4 s on the lab. Here one NETLINK_ROUTE socket stays open,
a VIP add or delete is one request and its ack, and a group's VIPs share one address dump.

pyroute2 stays the netlink grammar: requests are built and replies decoded with its message classes
(`ifaddrmsg`, `nlmsgerr`) and constants. Written by hand is what pyroute2's socket classes would do:
opening the socket, the 16-byte header walk that splits a datagram into messages, matching replies to
requests by sequence number, and reading the kernel's text out of an extended ack. Their import costs
the agent about 4.5 MB more (lean `AsyncIPRoute` 26 MB against 21.5 MB, see `pyroute2_lean`), and in
0.9.7 `Marshal.parse(skip_alien_seq=True)` does not step past a foreign message.

Requests run one at a time (a lock), so the reply to the current sequence number is the only one
wanted; anything else on the socket is a late reply to a cancelled request and is dropped.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
from collections.abc import Callable

from hbvip.net.nlraw import DUMP_TRIES, HEADER, RECV_SIZE, DumpInterrupted, RtnlError, split_messages
from hbvip.net.pyroute2_lean import (
    NETLINK_EXT_ACK,
    NLM_F_ACK,
    NLM_F_ACK_TLVS,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_OVERRUN,
    RTM_NEWADDR,
    RTM_NEWLINK,
    SOL_NETLINK,
    ifaddrmsg,
    linkmsg,
    nlmsg,
    nlmsgerr,
)

NETLINK_CAP_ACK = 10  # an error echoes only the request's header, not the whole request
NLMSGERR_ATTR_MSG = 1  # the kernel's text in an extended ack
# Reply types decoded with pyroute2's classes: addresses (tests), and one link's header (net/links.py).
DECODERS: dict[int, type[nlmsg]] = {RTM_NEWADDR: ifaddrmsg, RTM_NEWLINK: linkmsg}


def open_socket() -> socket.socket:
    """A non-blocking NETLINK_ROUTE socket bound to a kernel-chosen port, with extended acks when available."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                         socket.NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
        for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
            try:
                sock.setsockopt(SOL_NETLINK, option, 1)
            except OSError:
                pass  # older kernels: plain errno without the kernel's message text
    except OSError:
        sock.close()
        raise
    return sock


def error_of(raw: bytes, flags: int, what: str) -> RtnlError | None:
    """None for an ack (error 0); otherwise the refusal, with the kernel's own text when it sent one."""
    msg = nlmsgerr(raw)
    msg.decode()
    code = -msg["error"]
    if code == 0:
        return None
    detail = ext_ack_message(raw) if flags & NLM_F_ACK_TLVS else None
    reason = os.strerror(code) + (f" ({detail})" if detail else "")
    return RtnlError(code, f"{what}: {reason}")


def ext_ack_message(raw: bytes) -> str | None:
    """NLMSGERR_ATTR_MSG of an extended ack ("Attribute failed policy validation").

    Walked by hand: the attributes follow the echoed request header (NETLINK_CAP_ACK), an offset
    pyroute2's `nlmsgerr` does not skip, so it would read the echo as attributes.
    """
    offset = HEADER.size + 4 + HEADER.size  # our header, the errno, the echoed request's header
    while offset + 4 <= len(raw):
        length, attr_type = struct.unpack_from("=HH", raw, offset)
        if length < 4:
            break
        if attr_type & 0x3FFF == NLMSGERR_ATTR_MSG:
            return raw[offset + 4:offset + length].split(b"\0", 1)[0].decode(errors="replace")
        offset += (length + 3) & ~3
    return None


class Reply:
    """Collects the messages answering one request; `feed` says when the answer is complete.

    Kept apart from the socket so that ack, error and multipart handling can be checked on recorded bytes.
    """

    def __init__(self, seq: int, what: str, *, expects_ack: bool) -> None:
        self.seq = seq
        self.what = what
        self.expects_ack = expects_ack
        self.records: list[nlmsg] = []
        self.interrupted = False

    def feed(self, data: bytes) -> bool:
        """Take one datagram; True once the reply is complete. A refusal raises RtnlError."""
        for msg_type, flags, seq, raw in split_messages(data):
            if seq != self.seq:
                continue  # a late answer to an earlier, cancelled request
            self.interrupted |= bool(flags & NLM_F_DUMP_INTR)
            if msg_type == NLMSG_ERROR:
                error = error_of(raw, flags, self.what)
                if error is not None:
                    raise error
                return True
            if msg_type == NLMSG_DONE:
                if self.interrupted:
                    raise DumpInterrupted(errno.EINTR, f"{self.what}: addresses changed during the dump")
                return True
            if msg_type == NLMSG_OVERRUN:
                raise RtnlError(errno.ENOBUFS, f"{self.what}: the kernel reported lost messages")
            decoder = DECODERS.get(msg_type)
            if decoder is not None:
                record = decoder(raw)
                record.decode()
                self.records.append(record)
            if not flags & NLM_F_MULTI and not self.expects_ack:
                return True
        return False


class RtnlSession:
    """Requests to the kernel's routing netlink over one socket, opened on first use and again when it dies.

    A socket error (closed socket, lost datagrams) closes the socket and the request is sent once more
    on a new one. That is safe for what the agent asks: a dump is read-only, and an add or delete
    repeated after a lost ack answers EEXIST or EADDRNOTAVAIL, which the callers read as done.
    """

    def __init__(self, opener: Callable[[], socket.socket] = open_socket) -> None:
        self._opener = opener
        self._sock: socket.socket | None = None
        self._seq = 0
        self._lock = asyncio.Lock()
        self.reconnects = 0

    async def request(self, msg: nlmsg, msg_type: int, flags: int, what: str) -> list[nlmsg]:
        """Send `msg` as `msg_type` with NLM_F_REQUEST|`flags`; return the decoded records of the reply.

        `what` names the request in errors ("add 10.99.80.100/24 on eth0"). With NLM_F_ACK the call returns
        when the kernel acknowledged it; a refusal raises RtnlError with the kernel's errno.
        """
        async with self._lock:
            try:
                return await self._exchange(msg, msg_type, flags, what)
            except RtnlError:
                raise
            except OSError:
                self.close()
                self.reconnects += 1
                return await self._exchange(msg, msg_type, flags, what)

    async def dump(self, msg: nlmsg, msg_type: int, what: str) -> list[nlmsg]:
        """A whole table (NLM_F_DUMP), asked again when it changed while the kernel was sending it."""
        for attempt in range(1, DUMP_TRIES + 1):
            try:
                return await self.request(msg, msg_type, NLM_F_DUMP, what)
            except DumpInterrupted:
                if attempt == DUMP_TRIES:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            try:
                sock.close()
            except OSError:
                pass  # already dead: that is why it is being closed

    async def _exchange(self, msg: nlmsg, msg_type: int, flags: int, what: str) -> list[nlmsg]:
        if self._sock is None or self._sock.fileno() < 0:
            self._sock = self._opener()
        sock = self._sock
        loop = asyncio.get_running_loop()
        self._seq = self._seq % 0xFFFFFFFF + 1
        header = msg["header"]
        header["type"], header["flags"], header["sequence_number"], header["pid"] = msg_type, NLM_F_REQUEST | flags, self._seq, 0
        msg.encode()
        await loop.sock_sendall(sock, bytes(msg.data))
        reply = Reply(self._seq, what, expects_ack=bool(flags & NLM_F_ACK))
        while True:
            data = await loop.sock_recv(sock, RECV_SIZE)
            if not data:
                raise ConnectionError(f"{what}: netlink socket closed")
            if reply.feed(data):
                return reply.records


_session: RtnlSession | None = None
_session_loop: asyncio.AbstractEventLoop | None = None


def session() -> RtnlSession:
    """The agent's session, made on first use within the running loop.

    A session belongs to one event loop (its lock and socket readers do); a new loop (a new
    `asyncio.run`, as in the CLI and tests) gets a new session and the old socket is closed.
    """
    global _session, _session_loop  # pylint: disable=global-statement
    loop = asyncio.get_running_loop()
    if _session is None or _session_loop is not loop:
        if _session is not None:
            _session.close()
        _session, _session_loop = RtnlSession(), loop
    return _session
