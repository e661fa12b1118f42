"""The agent on two lab hosts with the seed's files: who serves the VIP, when, in which script order.

Everything here is real: two network namespaces with their own hostnames and /etc/ha.d, the VIP added
by netlink, gratuitous ARP on the bridge, probes from a client namespace.
"""

from __future__ import annotations

import re
import signal
import time

from pair import AGENT, FAST, SEED, Pair, calls, ha_cf, has_vip, holds_for, wait_until


def test_seed_pair_primary_serves_fails_over_on_power_loss_and_fails_back(pair: Pair) -> None:
    """Issue scenarios 1-3 with the seed's own timers (deadtime 5 s)."""
    lab = pair.lab
    a1, a2 = pair.start(SEED)
    probe = pair.probe
    arp = lab.arpwatch()
    try:
        # 1. both start -> server1 serves the VIP, the client uses server1's MAC
        probe.wait_for("server1", timeout=15)
        assert not has_vip(lab, "server2")
        lab.client.run(["ping", "-c", "1", "-W", "1", lab.vip])
        assert lab.client_neigh(lab.vip) == lab.hosts["server1"].mac
        wait_until(lambda: a2.status()["peer"]["state"] == "active", 5, "server2 to see server1 active")
        wait_until(lambda: a1.status()["stable"] and a2.status()["stable"], 5, "the pair to settle")

        # 2. power loss of server1 -> server2 serves within deadtime + 0.5 s, announced by GARP
        t_fault = time.monotonic()
        lab.hosts["server1"].power_loss([a1.proc])
        t_served = probe.wait_for("server2", timeout=SEED.deadtime_s + 3, after=t_fault)
        assert t_served - t_fault <= SEED.deadtime_s + 0.5, f"takeover took {t_served - t_fault:.3f} s"
        garps = wait_until(lambda: arp.gratuitous_from(lab.vip, after=t_fault), 2, "GARP from server2")
        assert {f.sender_mac for f in garps} == {lab.hosts["server2"].mac}
        log2 = a2.ha_log()
        assert "node server1: is dead" in log2
        assert "Resources being acquired from server1." in log2

        # 3. server1 returns -> failback; the call log is the seed's sequence
        lab.hosts["server1"].power_on()
        t_back = time.monotonic()
        a1.start()
        probe.wait_for("server1", timeout=15, after=t_back)
        wait_until(lambda: not has_vip(lab, "server2"), 5, "server2 to drop the VIP")
        wait_until(lambda: len(calls(lab)) >= 7, 5, "server1's failback calls")
        sequence = [(host, action) for _unused, host, action in calls(lab)]
        assert sequence == [
            ("server1", "status"), ("server1", "start"),                     # initial acquisition
            ("server2", "status"), ("server2", "start"),                     # takeover on power loss
            ("server2", "stop"), ("server1", "status"), ("server1", "start"),  # failback
        ]
        # The fallback node's stop (and VIP removal) finished before the default node started.
        stamps = calls(lab)
        assert stamps[4][0] < stamps[5][0]
        result = probe.stop()
        assert result.holders()[-1] == "server1"
    finally:
        arp.stop()


def test_auto_failback_off_keeps_the_vip_on_the_backup(pair: Pair) -> None:
    lab = pair.lab
    a1, a2 = pair.start(FAST, auto_failback="off")
    wait_until(lambda: has_vip(lab, "server1"), 10, "server1 to take the VIP")
    lab.hosts["server1"].power_loss([a1.proc])
    wait_until(lambda: has_vip(lab, "server2"), 5, "takeover by server2")
    lab.hosts["server1"].power_on()
    a1.start()
    wait_until(lambda: a1.status()["peer"]["state"] == "active" and a1.status()["stable"], 10,
               "server1 to rejoin")
    holds_for(lambda: has_vip(lab, "server2") and not has_vip(lab, "server1"), 2 * FAST.deadtime_s,
              "the VIP staying on server2")
    assert [a for _unused, h, a in calls(lab) if h == "server2"] == ["status", "start"]


def test_sigterm_on_holder_hands_over_in_under_a_second_with_seed_timers(pair: Pair) -> None:
    lab = pair.lab
    a1, a2 = pair.start(SEED)
    probe = pair.probe
    probe.wait_for("server1", timeout=15)
    wait_until(lambda: a2.status()["peer"]["state"] == "active", 5, "pair formed")
    t_stop = time.monotonic()
    a1.kill(signal.SIGTERM)
    t_served = probe.wait_for("server2", timeout=5, after=t_stop)
    assert t_served - t_stop < 1.0, f"handover took {t_served - t_stop:.3f} s"
    assert a1.wait() == 0
    assert not has_vip(lab, "server1")
    assert "Received shutdown notice from 'server1'." in a2.ha_log()
    # The VIP comes before failback.sh in the group, so the client can be served before `start` ran.
    order = wait_until(lambda: (o := [(h, a) for _unused, h, a in calls(lab)][-3:])[-1:] == [("server2", "start")]
                       and o, 5, "server2's failback.sh start")
    assert order == [("server1", "stop"), ("server2", "status"), ("server2", "start")]


def test_kill9_of_holder_then_restart_leaves_no_stale_vip(pair: Pair) -> None:
    lab = pair.lab
    a1, a2 = pair.start(FAST)
    probe = pair.probe
    probe.wait_for("server1", timeout=10)
    wait_until(lambda: a1.status()["stable"] and a2.status()["stable"], 5, "the pair to settle")
    a1.kill(signal.SIGKILL)                       # daemon only: the VIP stays behind on server1
    assert has_vip(lab, "server1")
    wait_until(lambda: has_vip(lab, "server2"), 5, "server2 to take over after deadtime")
    # Now both hold the address: the stale copy on server1 must go when its agent starts.
    t_restart = time.monotonic()
    a1.start()
    wait_until(lambda: [n for n in ("server1", "server2") if has_vip(lab, n)] == ["server1"], 10,
               "exactly one holder (server1) after restart")
    probe.wait_for("server1", timeout=5, after=t_restart + 0.5)
    holds_for(lambda: probe.snapshot().holders()[-1] == "server1", 0.5, "the client on server1")
    assert lab.client_neigh(lab.vip) == lab.hosts["server1"].mac


def test_standby_and_takeover_move_the_vip_and_return_when_done(pair: Pair) -> None:
    lab = pair.lab
    a1, a2 = pair.start(FAST)
    wait_until(lambda: has_vip(lab, "server1"), 10, "server1 to take the VIP")
    wait_until(lambda: a1.status()["stable"] and a2.status()["stable"], 10, "pair stable")
    r = a1.cli("standby")
    assert r.returncode == 0, r.stdout + r.stderr
    # returned only when the move was done
    assert has_vip(lab, "server2") and not has_vip(lab, "server1")
    assert a2.status()["groups"][0]["holder"] == "server2"
    r = a1.cli("takeover")
    assert r.returncode == 0, r.stdout + r.stderr
    assert has_vip(lab, "server1") and not has_vip(lab, "server2")
    # standby on a node holding nothing is a no-op that says so
    r = a2.cli("standby")
    assert r.returncode == 0 and "nothing to give up" in r.stdout


def test_authkeys_readable_by_others_refuses_to_start(pair: Pair) -> None:
    lab = pair.lab
    pair.install(FAST, authkeys_mode=0o644)
    host = lab.hosts["server1"]
    r = host.run(AGENT + ["run"], check=False, timeout=20)
    assert r.returncode == 2
    assert "Bad permissions on keyfile [/etc/ha.d/authkeys], 600 recommended." in r.stderr
    assert not has_vip(lab, "server1")


def test_wrong_key_on_one_node_datagrams_dropped_and_counted(pair: Pair) -> None:
    lab = pair.lab
    pair.install(FAST)
    lab.hosts["server2"].write("/etc/ha.d/authkeys", "auth 1\n1 sha1 not-the-lab-secret\n", mode=0o600)
    a1, a2 = pair.agent("server1"), pair.agent("server2")
    st = wait_until(lambda: (s := a1.status())["counters"]["dropped"].get("bad_auth", 0) >= 3 and s, 5,
                    "3 forged heartbeats dropped")
    assert st["peer"]["state"] in ("unknown", "dead") and st["counters"]["packets_received"] == 0
    secret_free = a1.ha_log() + a2.ha_log() + a1.cli("status", "--json").stdout
    assert "labsecret-0123" not in secret_free and "not-the-lab-secret" not in secret_free


def test_sighup_with_broken_config_keeps_the_running_pair(pair: Pair) -> None:
    lab = pair.lab
    a1, a2 = pair.start(FAST)
    wait_until(lambda: has_vip(lab, "server1"), 10, "server1 to take the VIP")
    before = lab.hosts["server1"].read("/etc/ha.d/ha.cf")
    lab.hosts["server1"].write("/etc/ha.d/ha.cf", before.replace("deadtime 1", "deadtime 0.3"))
    a1.kill(signal.SIGHUP)
    wait_until(lambda: "Configuration reload refused" in a1.ha_log(), 5, "reload refusal in the log")
    assert re.search(r"ha\.cf:\d+: .*deadtime", a1.ha_log())
    holds_for(lambda: a1.proc.poll() is None and has_vip(lab, "server1"), 1, "server1 running and serving")
    assert a1.status()["timers"]["deadtime"] == 1.0


def test_peer_renamed_by_sighup_keeps_the_vip_and_pairs_under_the_new_name(pair: Pair) -> None:
    """The agent side of the rolling rename: the peer learns server1 -> db1 on SIGHUP, no restart."""
    lab = pair.lab
    a1, a2 = pair.start(FAST)
    probe = pair.probe
    probe.wait_for("server1", timeout=10)
    wait_until(lambda: a1.status()["stable"] and a2.status()["stable"], 10, "pair stable")
    a1.stop()                                             # planned: server1 hands over and stops
    wait_until(lambda: has_vip(lab, "server2"), 5, "server2 to serve")
    # a reload during a takeover is refused ("reload again when it is done"): the VIP is up before
    # failback.sh has run, so wait until server2's takeover is over
    wait_until(lambda: a2.status()["stable"], 10, "server2's takeover to finish")
    s1 = lab.hosts["server1"]
    old_uuid = s1.path("/var/lib/heartbeat/hb_uuid").read_bytes()
    s1.run(["hostname", "db1"])
    s1.write("/etc/hostname", "db1\n")
    for h in lab.hosts.values():
        h.write("/etc/hosts", h.read("/etc/hosts") + f"{s1.address} db1\n")
        h.write("/etc/ha.d/ha.cf", ha_cf(FAST).replace("server1", "db1"))
        h.write("/etc/ha.d/haresources", f"db1 IPaddr::{lab.vip}/24/eth0 failback.sh\n")
    t_reload = time.monotonic()
    a2.kill(signal.SIGHUP)
    wait_until(lambda: "Peer node server1 is now db1" in a2.ha_log(), 5, "rename logged")
    assert a2.status()["peer"]["name"] == "db1" and has_vip(lab, "server2")
    # hb_uuid was NOT deleted: the agent says clearly that it was made under another hostname
    a1.start()
    wait_until(lambda: "was made under hostname 'server1'" in a1.ha_log(), 5, "uuid warning")
    a1.stop()
    s1.path("/var/lib/heartbeat/hb_uuid").unlink()
    a1.start()
    # (the lab's responder answers with the lab host's name, server1, whatever its hostname now is)
    probe.wait_for("server1", timeout=10, after=time.monotonic())
    wait_until(lambda: not has_vip(lab, "server2"), 5, "server2 to hand back")
    wait_until(lambda: a2.status()["peer"]["state"] == "active", 5, "server2 sees db1 active")
    assert s1.path("/var/lib/heartbeat/hb_uuid").read_bytes() != old_uuid
    assert a1.status()["node"] == "db1"
    # The VIP answers once IPaddr ran; the group is held (holder named) once failback.sh ran too.
    wait_until(lambda: a1.status()["groups"][0]["holder"] == "db1", 5, "db1 to hold the group")
    result = probe.stop()
    # The reload itself cost nothing: server2 served without a gap from SIGHUP until the failback.
    assert not [g for g in result.gaps() if g[0] >= t_reload and result.holder_at(g[0] - 0.001) == "server2"
                and g[1] - g[0] > 0.05 and result.holder_at(g[1] + 0.02) == "server2"]
