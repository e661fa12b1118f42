"""Replayed heartbeats: a recording of the link must never keep a dead node alive (fake clock).

The attack of issue "Replayed heartbeats keep a dead node alive": record a few seconds of a node's
datagrams (no key needed), and once the node has died, send them again from its address. Every datagram
is validly signed; only (generation, seq) tells it is old.
"""

from __future__ import annotations

from hbvip.cluster import Incoming, Membership, PeerDead, PeerMessage, Retransmit

DEADTIME = 0.5
KEEPALIVE = 0.1
GEN = 0x6b073ce9


def make() -> Membership:
    return Membership("server2", "server1", deadtime=DEADTIME, warntime=0.2, initdead=2, now=0.0)


def status(seq: int, hg: int = GEN) -> Incoming:
    return Incoming("status", "server1", hg, seq, {"st": "active", "dt": "1f4"})


def ack(ackseq: int, hg: int = GEN, dest: str = "server2") -> Incoming:
    return Incoming("NS_ackmsg", "server1", hg, None, {"ackseq": f"{ackseq:x}"}, dest=dest)


def run_live(m: Membership, seqs: range, t0: float = 0.1) -> tuple[list[Incoming], float]:
    """The peer beats once per keepalive and acks our every tenth message: returns what a recorder
    on the link saw, in order, and the time of the last genuine datagram."""
    recording: list[Incoming] = []
    t = t0
    for seq in seqs:
        t = t0 + (seq - seqs[0]) * KEEPALIVE
        for datagram in (status(seq),) + ((ack(seq),) if seq % 10 == 0 else ()):
            assert m.receive(datagram, t)[0] is None
            recording.append(datagram)
    return recording, t


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def classic_lines(actions: list) -> list[str]:
    return [a.classic for a in actions if getattr(a, "classic", None)]


def test_replay_right_after_power_loss_does_not_delay_the_death():
    m = make()
    recording, last = run_live(m, range(1, 31))
    # Power loss at `last`; the recording is resent at 10 per second from then on.
    t, dead_at, lines = last, None, []
    for datagram in recording * 2:
        t += 0.1
        reason, events, actions = m.receive(datagram, t)
        assert reason in ("duplicate", "replay") and not events
        lines += classic_lines(actions)
        check_events, check_actions = m.check(t)
        lines += classic_lines(check_actions)
        if dead_at is None and any(isinstance(e, PeerDead) for e in check_events):
            dead_at = t
    assert dead_at is not None and dead_at - last <= DEADTIME + 2 * KEEPALIVE
    assert m.peer.last_heard == last
    assert m.peer.status == "dead"
    assert not any("returning after partition" in line for line in lines)
    assert m.dropped["duplicate"] + m.dropped["replay"] == 2 * len(recording)


def test_replay_after_death_is_dropped_as_replay_and_never_revives_the_node():
    m = make()
    recording, last = run_live(m, range(1, 31))
    events, _unused = m.check(last + DEADTIME)
    assert kinds(events) == ["PeerDead"]
    for i, datagram in enumerate(recording):
        reason, events, actions = m.receive(datagram, last + 1 + i * 0.1)
        assert (reason, events) == ("replay", [])
        assert any("attempted replay attack" in line for line in classic_lines(actions))
    assert m.dropped["replay"] == len(recording)
    assert m.peer.status == "dead" and m.peer.last_heard == last and m.peer.max_seq == 30
    assert m.next_deadline() == float("inf")          # no timer armed for a node that stays dead


def test_replayed_acks_are_no_sign_of_life_while_the_peer_is_alive():
    m = make()
    recording, last = run_live(m, range(1, 21))
    acks = [d for d in recording if d.type == "NS_ackmsg"]
    for i in range(8):
        assert m.receive(acks[i % 2], last + 0.05 * (i + 1))[0] == "duplicate"
    assert m.peer.last_heard == last
    events, _unused = m.check(last + DEADTIME)
    assert kinds(events) == ["PeerDead"]


def test_partition_heal_with_seq_continuing_is_a_return_even_after_a_long_gap():
    m = make()
    _unused, last = run_live(m, range(1, 31))
    m.check(last + DEADTIME)
    # The partition lasted a minute: the peer's seq went on far beyond what a gap could be asked for.
    reason, events, actions = m.receive(status(630), last + 60)
    assert reason is None and kinds(events) == ["PeerReturned"]
    assert "Cluster node server1 returning after partition." in classic_lines(actions)
    assert not m.peer.missing                            # the partition's messages are not asked for
    assert m.receive(status(30), last + 60.1)[0] == "duplicate"
    assert m.receive(status(631), last + 60.1)[0] is None


def test_restart_with_higher_generation_is_accepted_and_old_generation_replays_are_not():
    m = make()
    recording, last = run_live(m, range(1, 31))
    m.check(last + DEADTIME)
    reason, events, actions = m.receive(status(1, hg=GEN + 1), last + 5)
    assert reason is None and kinds(events) == ["PeerRestarted", "PeerUp"]
    assert "Heartbeat restart on node server1" in classic_lines(actions)
    for datagram in recording:
        reason, events, actions = m.receive(datagram, last + 5.1)
        assert reason == "replay" and not events
    assert m.peer.hg == GEN + 1 and m.peer.max_seq == 1
    assert m.dropped["replay"] == len(recording)


def test_rexmit_fills_only_the_missing_range_and_is_no_sign_of_life():
    m = make()
    m.receive(status(1), 0.1)
    m.receive(status(4), 0.2)                            # 2 and 3 lost
    assert sorted(m.peer.missing) == [2, 3]
    _unused, actions = m.check(0.2 + 0.25)
    assert [dict(a.body)["firstseq"] for a in actions if getattr(a, "type", None) == "NS_rexmit"] == ["2", "3"]
    resent = Incoming("ask_resources", "server1", GEN, 2, {"rsc_hold": "all"})
    reason, events, _unused = m.receive(resent, 0.5)
    assert reason is None and events == [PeerMessage("ask_resources", {"rsc_hold": "all"})]
    assert m.peer.last_heard == 0.2                      # the copy is content, not life
    assert m.receive(resent, 0.55)[0] == "duplicate"     # once only
    assert m.receive(status(1), 0.56)[0] == "duplicate"  # outside the range
    assert sorted(m.peer.missing) == [3]
    m.check(0.2 + DEADTIME + 0.001)
    assert m.peer.status == "dead" and not m.peer.missing
    assert m.receive(status(3), 0.8)[0] == "replay"      # the window closed with the death


def test_retransmission_request_is_answered_only_while_the_peer_is_alive():
    m = make()
    m.receive(status(1), 0.1)
    rexmit = Incoming("NS_rexmit", "server1", GEN, None, {"firstseq": "5", "lastseq": "6"}, dest="server2")
    reason, _unused, actions = m.receive(rexmit, 0.2)
    assert reason is None and actions == [Retransmit(5, 6)]
    assert m.peer.last_heard == 0.1
    m.check(0.1 + DEADTIME)
    reason, events, actions = m.receive(rexmit, 1.0)
    assert (reason, events) == ("replay", []) and not any(isinstance(a, Retransmit) for a in actions)
    assert m.dropped["replay"] == 1


def test_a_reload_keeps_what_was_accepted_so_replays_stay_dropped():
    m = make()
    recording, last = run_live(m, range(1, 31))
    m.retime(deadtime=1.0, warntime=0.4, initdead=4)     # what SIGHUP does to membership
    for datagram in recording:
        assert m.receive(datagram, last + 0.05)[0] == "duplicate"
    events, _unused = m.check(last + 1.0)
    assert kinds(events) == ["PeerDead"]
    m.retime(deadtime=DEADTIME, warntime=0.2, initdead=2)
    for datagram in recording:
        assert m.receive(datagram, last + 2)[0] == "replay"
    assert m.peer.status == "dead"


def test_genuine_first_contact_and_restart_still_bring_the_peer_up():
    m = make()
    reason, events, _unused = m.receive(status(1), 0.1)
    assert reason is None and kinds(events) == ["PeerUp"]
    reason, events, _unused = m.receive(status(1, hg=GEN + 5), 0.2)
    assert reason is None and kinds(events) == ["PeerRestarted", "PeerUp"]


def test_after_our_restart_recorded_acks_and_requests_for_our_old_numbers_are_dropped():
    """survivor_restarted: the peer lives on in its generation, we restarted and count from 1 again, so a
    recording's acks of our old numbers carry the peer's current generation; only our own count shows
    they name messages this generation has not sent."""
    before = make()
    recording, last = run_live(before, range(1, 41))            # acks of our old numbers 10..40
    m = make()                                                   # our restart: a fresh membership
    t = last + 1
    assert m.receive(status(45), t, sent_seq=1)[0] is None      # the peer, still in its generation
    for datagram in (d for d in recording if d.type == "NS_ackmsg"):       # nothing new from a live peer
        assert m.receive(datagram, t + 0.01, sent_seq=5)[:2] == ("duplicate", [])
    rexmit = Incoming("NS_rexmit", "server1", GEN, None, {"firstseq": "20", "lastseq": "21"}, dest="server2")
    assert m.receive(rexmit, t + 0.02, sent_seq=5)[:2] == ("duplicate", [])
    assert m.dropped["duplicate"] == 5 and m.received == 1
    assert m.receive(ack(10), t + 0.1, sent_seq=12)[0] is None   # once we did send 10, its ack is taken
    assert m.receive(Incoming("NS_rexmit", "server1", GEN, None, {"firstseq": "11", "lastseq": "12"},
                              dest="server2"), t + 0.2, sent_seq=12)[1:] == ([], [Retransmit(11, 12)])


def test_a_heartbeat_peers_ack_of_its_own_message_is_taken_even_before_the_message():
    """Heartbeat acks its own numbers too; on a lossy link the ack may be all that arrives of seq 9."""
    m = make()
    m.receive(status(5), 0.1)
    assert m.receive(ack(9, dest="server1"), 0.2, sent_seq=1)[0] is None


def test_after_our_restart_a_recorded_ack_of_a_number_we_did_send_again_is_dropped_by_its_send_time():
    """The case the sequence rule leaves: our new run has sent seq 10 again when the peer dies, and the
    recording holds the peer's ack of our old seq 10. Its `ts` (the peer's clock, seconds) is older than
    the peer's newest sign of life, which a genuine ack never is."""
    m = make()
    status_now = Incoming("status", "server1", GEN, 45, {"st": "active", "ts": "6b140288"})
    assert m.receive(status_now, 1.0, sent_seq=9)[0] is None
    old_ack = Incoming("NS_ackmsg", "server1", GEN, None, {"ackseq": "a", "ts": "6b140285"}, dest="server2")
    assert m.receive(old_ack, 1.1, sent_seq=13)[:2] == ("duplicate", [])
    genuine = Incoming("NS_ackmsg", "server1", GEN, None, {"ackseq": "a", "ts": "6b140287"}, dest="server2")
    assert m.receive(genuine, 1.2, sent_seq=13)[0] is None          # within the clock's 1 s steps
    assert m.dropped["duplicate"] == 1 and m.peer.acked == {"server2": 10}
