"""The agent's netlink session on recorded kernel replies: no network, no namespace, no root.

The replies in tests/data/rtnl/replies.json were recorded from a real kernel; a socketpair stands in
for the kernel where a test needs the session's socket handling (sequence numbers, reconnect).
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import struct
from pathlib import Path

import pytest

from hbvip.config import VipSpec
from hbvip.net import rtnl, vip
from hbvip.net.ifaddr import IfAddr
from hbvip.net.pyroute2_lean import NLM_F_ACK, NLM_F_DUMP_INTR, RTM_GETADDR, RTM_NEWADDR, ifaddrmsg
from hbvip.net.rtnl import DumpInterrupted, Reply, RtnlError, RtnlSession

RECORDED = json.loads((Path(__file__).parent.parent / "data" / "rtnl" / "replies.json").read_text())


def datagrams(name: str) -> list[bytes]:
    return [bytes.fromhex(d) for d in RECORDED[name]]


def reply_to(name: str, *, expects_ack: bool = True) -> Reply:
    return Reply(RECORDED["seq"][name], name, expects_ack=expects_ack)


def renumbered(data: bytes, seq: int, set_flags: int = 0) -> bytes:
    """The same datagram with every message's sequence number (and optionally flags) changed."""
    out, offset = bytearray(data), 0
    while offset < len(out):
        length, _type, flags = struct.unpack_from("=IHH", out, offset)
        struct.pack_into("=HI", out, offset + 6, flags | set_flags, seq)
        offset += (length + 3) & ~3
    return bytes(out)


def test_dump_spanning_two_datagrams_lists_every_address_with_label_and_broadcast() -> None:
    reply = reply_to("dump", expects_ack=False)
    first, done = datagrams("dump")
    assert reply.feed(first) is False  # the records come without NLMSG_DONE: wait for more
    assert reply.feed(done) is True
    seen = [(m["index"], m["prefixlen"], m.get_attr("IFA_LOCAL"), m.get_attr("IFA_LABEL"), m.get_attr("IFA_BROADCAST"))
            for m in reply.records]
    assert seen == [(1, 8, "127.0.0.1", "lo", None), (3, 24, "10.99.80.1", "eth0", None),
                    (3, 24, "10.99.80.50", "eth0:7", None), (3, 24, "10.99.80.100", "eth0:0", "10.99.80.255")]


@pytest.mark.parametrize("name", ["add_ack", "del_ack"])
def test_ack_completes_a_change_without_records(name: str) -> None:
    reply = reply_to(name)
    assert reply.feed(datagrams(name)[0]) is True and reply.records == []


@pytest.mark.parametrize(("name", "code", "text"), [
    ("add_eexist", errno.EEXIST, "ipv4: Address already assigned"),
    ("add_bad_label", errno.ERANGE, "Attribute failed policy validation"),
    ("del_absent", errno.EADDRNOTAVAIL, None),
])
def test_refusal_raises_the_kernels_errno_and_text(name: str, code: int, text: str | None) -> None:
    with pytest.raises(RtnlError) as caught:
        reply_to(name).feed(datagrams(name)[0])
    assert caught.value.errno == code
    assert caught.value.strerror.startswith(f"{name}: ")
    if text:
        assert f"({text})" in caught.value.strerror


def test_replies_to_other_requests_are_skipped() -> None:
    reply = Reply(99, "dump", expects_ack=False)
    assert not any(reply.feed(d) for d in datagrams("dump") + datagrams("add_eexist"))
    assert reply.records == []


def test_dump_that_raced_with_a_change_is_reported_as_interrupted() -> None:
    first, done = (renumbered(d, 14, NLM_F_DUMP_INTR) for d in datagrams("dump"))
    reply = reply_to("dump", expects_ack=False)
    reply.feed(first)
    with pytest.raises(DumpInterrupted):
        reply.feed(done)


def test_truncated_datagram_is_an_error_not_a_short_list() -> None:
    with pytest.raises(RtnlError) as caught:
        reply_to("dump", expects_ack=False).feed(datagrams("dump")[0][:100])
    assert caught.value.errno == errno.EBADMSG


class FakeKernel:
    """The far end of a datagram socketpair: records each request and answers with recorded replies.

    `answers` are names from the recording, used in order, renumbered to the request's sequence number.
    """

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.requests: list[ifaddrmsg] = []
        self.sockets: list[socket.socket] = []
        self.kernel_ends: list[socket.socket] = []

    def open(self) -> socket.socket:
        ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setblocking(False)
        self.sockets.append(ours)
        self.kernel_ends.append(kernel)
        asyncio.get_running_loop().add_reader(kernel.fileno(), self._answer, kernel)
        return ours

    def _answer(self, kernel: socket.socket) -> None:
        try:
            data = kernel.recv(65536)
        except OSError:
            data = b""
        if not data:  # our end was closed
            asyncio.get_running_loop().remove_reader(kernel.fileno())
            kernel.close()
            return
        request = ifaddrmsg(data)
        request.decode()
        self.requests.append(request)
        seq = request["header"]["sequence_number"]
        for datagram in datagrams(self.answers.pop(0)):
            kernel.send(renumbered(datagram, seq))


def test_session_matches_replies_and_reopens_a_closed_socket() -> None:
    kernel = FakeKernel(["dump", "add_ack", "dump"])

    async def scenario() -> tuple[list, int]:
        session = RtnlSession(kernel.open)
        request = ifaddrmsg()
        request["family"] = socket.AF_INET
        first = await session.dump(request, RTM_GETADDR, "list")
        await session.request(vip._ifaddr(3, 24, [("IFA_LOCAL", "10.99.80.100")]), RTM_NEWADDR, NLM_F_ACK, "add")
        kernel.sockets[0].close()  # the socket dies under the session
        again = await session.dump(request, RTM_GETADDR, "list")
        session.close()
        return [len(first), len(again)], session.reconnects

    sizes, reconnects = asyncio.run(scenario())
    assert sizes == [4, 4] and len(kernel.sockets) == 2 and reconnects == 0  # a closed socket is simply reopened
    seqs = [r["header"]["sequence_number"] for r in kernel.requests]
    assert len(set(seqs)) == 3, "every request has its own sequence number"
    assert kernel.requests[1].get_attr("IFA_LOCAL") == "10.99.80.100"


def test_session_resends_once_on_a_new_socket_when_the_old_one_fails() -> None:
    kernel = FakeKernel(["add_ack", "add_ack"])

    async def scenario() -> int:
        session = RtnlSession(kernel.open)
        await session.request(vip._ifaddr(3, 24, [("IFA_LOCAL", "10.99.80.100")]), RTM_NEWADDR, NLM_F_ACK, "add")
        dead = kernel.kernel_ends[0]
        asyncio.get_running_loop().remove_reader(dead.fileno())
        dead.close()  # sending on our end now fails (ECONNREFUSED), as a dead netlink socket would
        await session.request(vip._ifaddr(3, 24, [("IFA_LOCAL", "10.99.80.101")]), RTM_NEWADDR, NLM_F_ACK, "add")
        session.close()
        return session.reconnects

    assert asyncio.run(scenario()) == 1
    assert [r.get_attr("IFA_LOCAL") for r in kernel.requests] == ["10.99.80.100", "10.99.80.101"]
    assert len(kernel.sockets) == 2


HOST = [IfAddr("eth0", 3, "10.99.80.1", 24, "eth0", None), IfAddr("eth0", 3, "10.99.80.50", 24, "eth0:0", None)]


def test_add_vip_is_one_request_on_the_next_free_label_and_eexist_means_present(monkeypatch) -> None:
    kernel = FakeKernel(["add_ack", "add_eexist"])

    async def scenario() -> list:
        session = RtnlSession(kernel.open)
        monkeypatch.setattr(vip, "session", lambda: session)
        view = list(HOST)
        first = await vip.add_vip(VipSpec("10.99.80.100", None, None, None), view)
        second = await vip.add_vip(VipSpec("10.99.80.101", None, None, None), view)  # the kernel says EEXIST
        present = await vip.add_vip(VipSpec("10.99.80.100", None, None, None), view)  # known from the view
        session.close()
        return [first, second, present, [a.label for a in view]]

    first, second, present, labels = asyncio.run(scenario())
    assert first == ("eth0:1", False)  # eth0:0 is taken
    assert second == ("eth0:2", True)  # someone else added it after the snapshot
    assert present == ("eth0:1", True)
    assert labels == ["eth0", "eth0:0", "eth0:1"]
    assert len(kernel.requests) == 2, "one netlink request per VIP added, none for a VIP already in the view"
    added = kernel.requests[0]
    assert (added["index"], added["prefixlen"], added.get_attr("IFA_LABEL"), added.get_attr("IFA_BROADCAST")) == (
        3, 24, "eth0:1", "10.99.80.255")


def test_default_session_belongs_to_one_event_loop() -> None:
    async def current() -> RtnlSession:
        return rtnl.session()

    first = asyncio.run(current())
    assert asyncio.run(current()) is not first  # a new asyncio.run gets its own session
