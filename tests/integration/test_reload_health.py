"""A reload applies hbvip.cf's health lines on a real lab pair (issue 18 follow-up): a check added by
editing hbvip.cf and `hbvip reload` runs and its failure moves the VIP; a failing check removed by a
reload makes the node eligible again and auto_failback brings the VIP home; removing the last line stops
the probes; no agent restarts.

The service is `healthlab`'s http.server; FAST timers; the client probe says who answers on the VIP.
"""

from __future__ import annotations

import time

from faults import config_snapshot
from healthlab import PORT, eligibility, healthy_pair
from pair import Pair, wait_until

INTERVAL, FALL = 0.3, 2
WEB = (f'check web command "curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:{PORT}/" '
       f"interval {int(INTERVAL * 1000)}ms fall {FALL} rise 1\n")
#: A check kept across the second reload: the watch follows the new lines instead of starting over.
ALIVE = "check alive command true interval 300ms\n"


def reload_both(p: Pair, hbvip_cf: str) -> None:
    for name, a in p.agents.items():
        p.host(name).write("/etc/ha.d/hbvip.cf", hbvip_cf)
        assert "reloaded" in a.cli("reload").stdout
    p.config_before = config_snapshot(p.lab)       # the test changed /etc/ha.d, not the agents


def checks(p: Pair, name: str) -> dict[str, bool | None]:
    return {c["name"]: c["last"] for c in p.agents[name].status()["health"] or []}


def test_a_check_added_by_reload_moves_the_vip_and_removing_it_brings_the_vip_home(lab):
    with healthy_pair(lab, "") as (p, services):
        a1 = p.agents["server1"]
        pids = {n: a.proc.pid for n, a in p.agents.items()}
        assert a1.status()["health"] is None          # no health lines: no watch

        # 1. add the check on both nodes, reload: it runs (healthy), the VIP stays
        reload_both(p, ALIVE + WEB)
        for name in p.agents:
            wait_until(lambda n=name: checks(p, n) == {"alive": True, "web": True}, 5, f"the checks to run on {name}")
            assert "check web added" in p.agents[name].ha_log()
        assert p.holders() == {"server1"}

        # 2. the service dies on the holder: the new check moves the VIP
        t0 = time.monotonic()
        services.kill("server1")
        took = p.serves("server2", t0)
        print(f"\ncheck added by reload; service death -> VIP on the peer in {took:.3f} s")
        assert took <= INTERVAL * FALL + 2 * p.timers.keepalive_s + 0.5 + 1.0, took
        p.settle("server2", t0, 5)
        assert "check failed: web: giving local resources to server2" in a1.ha_log()
        assert eligibility(p, "server1")["eligible"] is False

        # 3. remove the failing check by reload (the service stays dead): eligible again, home (auto_failback)
        t1 = time.monotonic()
        reload_both(p, ALIVE)
        took = p.serves("server1", t1)
        print(f"failing check removed by reload -> home node serves again after {took:.3f} s")
        p.settle("server1", t1, 5)
        log1 = a1.ha_log()
        assert "check web removed" in log1 and "Eligible again for local resources" in log1
        assert "auto_failback: asking server2 for our local resources" in log1
        assert eligibility(p, "server1") == {"eligible": True, "peer_eligible": True, "degraded": False}
        assert checks(p, "server1") == {"alive": True}

        # 4. remove the last health line: the watch stops, the node stays eligible and keeps the VIP
        reload_both(p, "")
        assert a1.status()["health"] is None and "check alive removed" in a1.ha_log()
        assert eligibility(p, "server1")["eligible"] is True and p.holders() == {"server1"}
        assert {n: a.proc.pid for n, a in p.agents.items() if a.proc.poll() is None} == pids   # never restarted
