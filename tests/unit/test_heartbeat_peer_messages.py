"""The messages a real Heartbeat 3.0.6 peer needs from us, beyond what an agent peer needs.

Heartbeat goes `active` only after its `reqnodes` is answered with `repnodes` (or after initdead), and
its `hb_takeover` tool asks the other node with a `hb_takeover` message named from the asker's side.
"""

from __future__ import annotations

from hbvip.cluster import (
    Command, Failover, Hold, Incoming, Membership, PeerDead, PeerMessage, PeerUp, ResourcesDone, Send,
)


def membership() -> Membership:
    return Membership("server2", "server1", deadtime=1, warntime=0.5, initdead=2, now=0.0,
                      nodes=("server1", "Server2"))


def sends(actions: list, mtype: str) -> list[Send]:
    return [a for a in actions if isinstance(a, Send) and a.type == mtype]


def test_reqnodes_addressed_to_us_is_answered_with_the_whole_node_list():
    m = membership()
    _unused, events, actions = m.receive(Incoming("reqnodes", "server1", 7, 5, {}, dest="server2"), 1.0)
    [rep] = sends(actions, "repnodes")
    # Heartbeat removes every configured node missing from nodelist: both names, ha.cf order, lowercase,
    # each followed by a space, exactly as Heartbeat's own repnodes in the capture.
    assert rep.body == (("dest", "server1"), ("nodelist", "server1 server2 "), ("delnodelist", " "))
    assert not any(isinstance(e, PeerMessage) for e in events)   # membership business, not failover's


def test_reqnodes_for_another_node_is_not_answered():
    m = membership()
    _unused, _unused, actions = m.receive(Incoming("reqnodes", "server1", 7, 5, {}, dest="server3"), 1.0)
    assert not sends(actions, "repnodes")


def holder_of_everything() -> Failover:
    """server2 took server1's group after server1 died; server1 is back but not yet stable."""
    f = Failover(me="server2", peer="server1", auto_failback="on", settle_timeout=2, handshake_timeout=30, now=0)
    f.handle(PeerDead(), 1.0)
    f.handle(ResourcesDone("acquire", Hold.ALL, True), 1.1)
    f.handle(PeerUp(), 2.0)
    assert f.held == Hold.ALL
    return f


def test_hb_takeover_from_heartbeat_starts_standby_of_the_mirror_image():
    f = holder_of_everything()
    out = f.handle(PeerMessage("hb_takeover", {"rsc_hold": "local"}), 3.0)   # server1 wants its own groups
    [ask] = sends(out, "ask_resources")
    assert ask.body == (("rsc_hold", "foreign"), ("info", "me"))


def test_hb_takeover_with_an_unknown_word_changes_nothing():
    f = holder_of_everything()
    out = f.handle(PeerMessage("hb_takeover", {"rsc_hold": "bogus"}), 3.0)
    assert not sends(out, "ask_resources") and f.handshake is None


def test_takeover_command_sends_heartbeats_hb_takeover_in_our_own_words():
    f = Failover(me="server1", peer="server2", auto_failback="off", settle_timeout=2, handshake_timeout=30, now=0)
    f.handle(PeerUp(), 0.5)
    f.handle(PeerMessage("resource", {"rsc_hold": "all", "isstable": "1"}), 0.6)   # server2 holds all
    out = f.handle(Command("takeover", "all", request_id=4), 1.0)
    [req] = sends(out, "hb_takeover")
    assert req.body == (("rsc_hold", "all"),)
