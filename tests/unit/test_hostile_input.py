"""Hostile or broken input at the edges this issue added: drop-log flooding, ICMP replies that are not
ours, a peer that pings but sends no heartbeats, and a peer whose files differ."""

from __future__ import annotations

import asyncio
import struct

from hbvip.cluster import Log, Send
from hbvip.diagnosis import digest_state, explain_silence, firewall_hint
from hbvip.droplog import DropLogLimiter
from hbvip.net.icmp import checksum, echo_request, is_reply_to

IP_HEADER = bytes([0x45]) + bytes(19)


def replay_log() -> Log:
    return Log("warning", "packet.replay", "attempted replay attack [server2]?")


def test_a_flood_of_replays_logs_a_burst_then_one_summary_per_window():
    limiter = DropLogLimiter(burst=5, window=10.0)
    kept = [a for i in range(10_000) for a in limiter.filter("replay", [replay_log()], now=i / 1000)]
    assert len(kept) == 5
    later = limiter.filter("replay", [replay_log()], now=10.5)
    assert [a.event for a in later] == ["packet.log_suppressed", "packet.replay"]
    assert later[0].fields["suppressed"] == 9_995
    assert "9995 more dropped packet(s) [replay] not logged" in later[0].classic


def test_each_reason_has_its_own_budget_and_non_log_actions_pass():
    limiter = DropLogLimiter(burst=1, window=10.0)
    ack = Send("NS_ackmsg")
    assert limiter.filter("replay", [replay_log(), ack], 0.0) == [replay_log(), ack]
    assert limiter.filter("replay", [replay_log(), ack], 0.1) == [ack]
    assert limiter.filter("unknown_node", [replay_log()], 0.2) == [replay_log()]


def test_duplicates_of_redundant_paths_never_warn_about_suppressed_lines():
    """Two heartbeat paths deliver each datagram twice: the second copy's debug line past the burst is
    dropped without the warning summary a real flood gets (it warned every 10 s on a healthy pair)."""
    limiter = DropLogLimiter(burst=5, window=10.0)
    duplicate = Log("debug", "packet.duplicate", None, {"src": "server2"})
    kept = [a for i in range(1000) for a in limiter.filter("duplicate", [duplicate], now=i / 50)]  # two windows
    assert [a.event for a in kept] == ["packet.duplicate"] * 10
    assert all(a.level == "debug" for a in kept)


def test_internet_checksum_of_an_echo_request_verifies_to_zero():
    packet = echo_request(0x1234, 7, b"abc")          # odd length: the pad byte path
    assert checksum(packet) == 0
    assert struct.unpack("!BBHHH", packet[:8])[0] == 8


def test_only_our_echo_reply_counts():
    reply = bytes([0, 0, 0, 0]) + struct.pack("!HH", 0x1234, 7)
    assert is_reply_to(IP_HEADER + reply, 0x1234, 7)
    assert not is_reply_to(IP_HEADER + reply, 0x1234, 8)                   # another sequence
    assert not is_reply_to(IP_HEADER + reply, 0x4321, 7)                   # another process's ping
    assert not is_reply_to(IP_HEADER + echo_request(0x1234, 7), 0x1234, 7)  # our own request echoed back
    for truncated in (b"", b"\x45", IP_HEADER, IP_HEADER + reply[:5], bytes([0x4F]) + reply):
        assert not is_reply_to(truncated, 0x1234, 7)


def test_silent_peer_that_pings_is_a_firewall_problem_and_a_dark_one_is_not():
    async def answers(address: str) -> bool:
        return address == "10.99.0.2"

    assert asyncio.run(explain_silence(["10.99.0.9", "10.99.0.2"], 694, answers)) == firewall_hint(694)
    assert asyncio.run(explain_silence(["10.99.0.9"], 694, answers)) is None
    assert "check the firewall for UDP 694" in firewall_hint(694)


def test_digest_state_names_what_the_operator_must_do():
    assert digest_state("abc", "abc") == "same"
    assert digest_state("abc", "abd") == "differs"
    assert digest_state("abc", None) == "unknown"          # Heartbeat itself sends no digest
