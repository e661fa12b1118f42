"""Service health on a real lab pair (issue 18): the VIP moves when the *service* dies, not only the node.

The service is a real process on each host (python's http.server on the host's loopback, port 18080;
`healthlab`) and the check is the curl an operator would write. FAST timers: keepalive 200 ms, deadtime 1 s. The client
probe says who answers on the VIP.
"""

from __future__ import annotations

import signal
import time

from faults import config_snapshot, running_pair
from hbpeer import MixedPair, install_mixed
from healthlab import PORT, Services, eligibility, healthy_pair
from pair import FAST, Pair, calls, has_vip, holds_for, wait_until

INTERVAL, FALL, RISE = 0.3, 2, 3
CHECK = (f'check web command "curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:{PORT}/" '
         f"interval {int(INTERVAL * 1000)}ms fall {FALL} rise {RISE}\n")
#: The stub scripts, the VIP add and the GARP burst's first frame: what "+ the start scripts" allows.
START_SCRIPTS = 0.5
#: Heartbeat advertises deadtime + 2 s for its first 5 s; the fault comes after that (as in the interop suite).
HB_SETTLE = 5.5


def test_service_death_moves_the_vip_nothing_moves_when_both_fail_and_failback_waits_for_rise(lab):
    with healthy_pair(lab, CHECK) as (p, services):
        a1, a2 = p.agents["server1"], p.agents["server2"]
        bound = INTERVAL * FALL + 2 * p.timers.keepalive_s + START_SCRIPTS
        # 1. the service dies on the holder: the peer serves the VIP within interval x fall + 2 x keepalive
        t0 = time.monotonic()
        services.kill("server1")
        took = p.serves("server2", t0)
        print(f"\nservice death -> VIP served by the peer in {took:.3f} s (bound {bound:.2f} s)")
        assert took <= bound, took
        p.settle("server2", t0, 5)
        log1 = a1.ha_log()
        assert f"check web failed ({FALL} in a row): exit 7" in log1
        assert "check failed: web: giving local resources to server2" in log1
        assert 'event=group.release group=IPaddr::' in log1 and 'reason="check failed: web"' in log1
        assert eligibility(p, "server1") == {"eligible": False, "peer_eligible": True, "degraded": False}
        assert "eligible IPaddr::" in a1.cli("status").stdout

        # 2. the peer's service dies too: nothing moves, both say degraded
        t1 = time.monotonic()
        services.kill("server2")
        wait_until(lambda: all(eligibility(p, n)["degraded"] for n in ("server1", "server2")),
                   INTERVAL * FALL + 2, "both nodes to say degraded")
        holds_for(lambda: p.holders() == {"server2"}, 3 * INTERVAL * FALL + 1, "the group to stay on server2")
        assert p.watch.max_holders(t1) == 1
        assert "DEGRADED: no node eligible, it stays" in a2.cli("status").stdout

        # 3. server2's service comes back: it keeps the group; then server1's: home after `rise`
        services.start("server2")
        wait_until(lambda: not eligibility(p, "server2")["degraded"], INTERVAL * RISE + 2, "server2 eligible")
        t2 = time.monotonic()
        services.start("server1")
        took = p.serves("server1", t2)
        print(f"recovery -> home node serves again after {took:.3f} s (at least (rise-1) x interval = "
              f"{(RISE - 1) * INTERVAL:.2f} s)")
        assert took >= (RISE - 1) * INTERVAL          # not before `rise` successes in a row
        p.settle("server1", t2, 5)
        assert "auto_failback: asking server2 for our local resources" in a1.ha_log()


def test_a_hanging_check_is_killed_at_its_timeout_and_counts_as_a_failure(lab):
    hang = 'check hang command "test ! -e /run/hang || exec sleep 600" interval 300ms timeout 400ms fall 1\n'
    with healthy_pair(lab, hang) as (p, _services):
        t0 = time.monotonic()
        p.host("server1").write("/run/hang", "")
        took = p.serves("server2", t0)
        print(f"\nhanging check -> VIP on the peer in {took:.3f} s")
        assert took <= 0.3 + 0.4 + 2 * p.timers.keepalive_s + START_SCRIPTS + 2.0  # + KILL_GRACE of the hang
        assert "check hang failed (1 in a row): timed out after 0.4 s (killed)" in p.agents["server1"].ha_log()
        left = p.host("server1").run(["pgrep", "-f", "sleep 600"], check=False).stdout.split()
        assert left == [], left       # the hanging command and its process group are gone


def test_track_interface_link_down_moves_the_vip(lab):
    # The lab has one link: eth0 carries the VIP and the heartbeats, so this is also a partition (the peer
    # takes the VIP as after a death; server1 keeps its copy on the dead link, degraded) and the heal after
    # it is a partition heal: the two copies may overlap for a moment.
    with healthy_pair(lab, "track_interface eth0\n", overlap_allowed=True) as (p, _services):
        s1 = p.host("server1")
        t0 = time.monotonic()
        s1.run(["ip", "link", "set", "eth0", "down"])
        try:
            wait_until(lambda: "link down: eth0" in p.agents["server1"].ha_log(), 3, "server1 to see its link down")
            took = p.serves("server2", t0, timeout=p.deadline + 5)
            print(f"\nlink down on the holder -> VIP on the peer in {took:.3f} s")
            log1 = p.agents["server1"].ha_log()
            assert "Link eth0 is down" in log1 and "link down: eth0: giving local resources to server2" in log1
            wait_until(lambda: p.agents["server1"].status()["groups"][0]["degraded"], p.deadline + 2,
                       "server1 (peer dead to it, itself ineligible) to say degraded")
        finally:
            s1.run(["ip", "link", "set", "eth0", "up"])
        p.settle("server1", time.monotonic(), p.deadline + 10)     # healed: the home node serves again
        assert "Link eth0 is up" in p.agents["server1"].ha_log()


SVC_SH = f"""#!/bin/sh
# A service started with the VIP (Heartbeat's model): a real http.server, its pid in /run/svc.pid.
P=/run/svc.pid
case "$1" in
start)  python3 -m http.server {PORT} --bind 127.0.0.1 --directory /etc/ha.d >/dev/null 2>&1 &
        echo $! > $P
        echo "$(date +%s.%N) $(uname -n) start" >> /var/log/svc-calls.log ;;
stop)   [ -f $P ] && kill "$(cat $P)" 2>/dev/null; rm -f $P ;;
status) if [ -f $P ] && kill -0 "$(cat $P)" 2>/dev/null; then echo running; else echo stopped; fi ;;
esac
exit 0
"""


def svc_starts(pair: Pair, name: str) -> int:
    log = pair.host(name).path("/var/log/svc-calls.log")
    return len(log.read_text().splitlines()) if log.exists() else 0


def kill_svc(pair: Pair, name: str) -> None:
    host = pair.host(name)
    host.kill(int(host.read("/run/svc.pid").strip()), signal.SIGKILL)


def test_a_monitored_resource_is_restarted_once_then_moved_and_cleanup_lets_it_home(lab):
    monitor = "monitor svc.sh interval 300ms fall 1 restarts 1\n"
    with running_pair(lab, start=False, extensions=monitor) as p:
        for host in lab.hosts.values():
            host.write("/etc/ha.d/haresources", f"server1 IPaddr::{lab.vip}/24/eth0 failback.sh svc.sh\n")
            host.write("/etc/ha.d/resource.d/svc.sh", SVC_SH, mode=0o755)
        p.config_before = config_snapshot(lab)
        for a in p.agents.values():
            a.start()
        wait_until(lambda: p.holders() == {"server1"} and svc_starts(p, "server1") == 1, 10, "server1 serving")
        p.stable()
        p.probe.wait_for("server1")
        a1 = p.agents["server1"]
        key = a1.status()["groups"][0]["key"]
        # first failure: restarted here, the VIP stays
        t0 = time.monotonic()
        kill_svc(p, "server1")
        wait_until(lambda: svc_starts(p, "server1") == 2, 3, "server1 to restart svc.sh")
        print(f"\nmonitored resource killed -> restarted locally in {time.monotonic() - t0:.3f} s")
        assert p.holders() == {"server1"} and p.watch.max_holders(t0) == 1
        assert "monitor svc.sh failed: restarting it (restart 1)" in a1.ha_log()
        wait_until(lambda: a1.status()["health"][0]["last"] is True, 3, "the restarted svc.sh to report running")
        # second failure: restarts used up, the group moves and server1 stays out of it
        t1 = time.monotonic()
        kill_svc(p, "server1")
        took = p.serves("server2", t1)
        print(f"second failure -> VIP served by the peer in {took:.3f} s")
        p.settle("server2", t1, 5)
        assert svc_starts(p, "server2") == 1 and svc_starts(p, "server1") == 2
        log1 = a1.ha_log()
        assert "monitor failed: svc.sh: restarts used up, not eligible for its group until `hbvip cleanup`" in log1
        assert 'reason="monitor failed: svc.sh"' in log1
        probe = a1.status()["health"][0]
        assert (probe["healthy"], probe["restarts"], probe["banned_for_s"]) == (False, 1, -1.0)
        holds_for(lambda: p.holders() == {"server2"}, 1.0, "server1 not to take its group back while banned")
        # the operator clears it: eligible again, auto_failback brings the group home
        out = a1.cli("cleanup", key).stdout
        assert "monitor failures cleared; eligible again" in out
        t2 = time.monotonic()
        p.serves("server1", t2)
        p.settle("server1", t2, 5)


def test_mixed_pair_a_failed_check_on_hbvip_hands_the_group_to_real_heartbeat(lab):
    """hbvip on server1 (the home node, with the check), Debian's Heartbeat 3.0.6 on server2 (no checks:
    it ignores hbvip.cf and the eligibility field). The failed check hands the group over with the standby
    protocol, and Heartbeat takes it as after `hb_standby`."""
    install_mixed(lab, FAST)
    lab.hosts["server1"].write("/etc/ha.d/hbvip.cf", CHECK)
    p = MixedPair(lab, FAST)
    services = Services(p)
    try:
        services.start("server1")
        a1 = p.agent("server1")
        p.serves("server1", time.monotonic())
        hb2 = p.heartbeat("server2")
        wait_until(lambda: hb2.nodestatus("server1") == "active", 10, "cl_status to show server1 active")
        wait_until(lambda: a1.status()["stable"] and a1.status()["peer"]["stable"], 10, "both stable")
        p.probe.wait_for("server1")
        time.sleep(HB_SETTLE)   # Heartbeat advertises deadtime + 2 s for its first 5 s (its own timer)
        n = len(calls(lab))
        t0 = time.monotonic()
        services.kill("server1")
        took = p.serves("server2", t0, timeout=10)
        print(f"\nmixed pair: service death on hbvip -> Heartbeat serves after {took:.3f} s")
        # Heartbeat's own ResourceManager + IPaddr shell scripts take 1-2 s on a loaded lab box
        assert took <= INTERVAL * FALL + 2 * FAST.keepalive_s + 4.0, took
        wait_until(lambda: len(calls(lab)) - n >= 3, 5, "the hand-over's script calls")
        assert [(h, a) for _t, h, a in calls(lab)[n:]] == [("server1", "stop"), ("server2", "status"),
                                                           ("server2", "start")]
        assert not has_vip(lab, "server1")
        assert 'reason="check failed: web"' in a1.ha_log()
        # Heartbeat tells the agent once its own start script has returned.
        wait_until(lambda: "Other node completed standby takeover of local resources." in a1.ha_log(), 5,
                   "Heartbeat's word that it completed the takeover")
        assert hb2.bad_lines("server1") == []
    finally:
        services.stop_all()
        p.close()
