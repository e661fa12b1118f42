"""`hbvip restart-in-place` on the lab: the holder's agent is replaced without releasing its VIP, the
peer waits for it instead of taking over, and a record that is too old is not continued.

Real agents in network namespaces, the real VIP, the client probing it every 10 ms (issue 14 point 4).
"""

from __future__ import annotations

import json
import re
import time

from pair import FAST, Pair, calls, has_vip, wait_until

RECORD = "/run/hbvip/handover.json"


def settled(pair: Pair) -> None:
    pair.stable()
    wait_until(lambda: all(a.status()["peer"]["state"] == "active" for a in pair.agents.values()), 10,
               "both agents to see the other active", interval=0.1)


def test_the_holder_restarts_in_place_its_vip_never_moves_and_the_peer_waits(pair: Pair) -> None:
    lab = pair.lab
    a1, a2 = pair.start(FAST)
    probe = pair.probe
    probe.wait_for("server1", timeout=15)
    settled(pair)
    pid, before = a1.proc.pid, a1.status()
    logs = {name: len(a.ha_log()) for name, a in pair.agents.items()}
    script_calls = len(calls(lab))
    pair.watch.start()
    started = time.monotonic()
    done = a1.cli("restart-in-place", "--timeout", "20", check=False)
    ended = time.monotonic()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "holding local resources" in done.stdout, done.stdout
    time.sleep(3 * FAST.keepalive_s)     # the peer hears the new agent's beats (and would react to them)
    result = probe.stop()
    window = [(t, h) for t, h in result.samples if started <= t <= ended + 3 * FAST.keepalive_s]
    after = a1.status()
    since_asked = time.monotonic() - started
    print(f"restart in place: took {ended - started:.2f} s, longest probe gap {result.longest_gap() * 1000:.0f} ms, "
          f"gaps {[(round(a - started, 2), round((b - a) * 1000)) for a, b in result.gaps()]}")
    # the same process (exec), the same generation: the peer saw no restart
    assert a1.proc.poll() is None and a1.proc.pid == pid
    assert after["generation"] == before["generation"] and after["uptime_s"] < since_asked
    assert after["hold"] == "local" and after["stable"] and after["peer"]["state"] == "active"
    assert {h for _unused, h in window} == {"server1"}, result.gaps()
    assert result.longest_gap() <= 0.05, result.gaps()
    assert pair.watch.max_holders(started) == 1 and not has_vip(lab, "server2")
    new = {name: a.ha_log()[logs[name]:] for name, a in pair.agents.items()}
    for name, text in new.items():
        assert "event=group.release" not in text and "event=group.acquire" not in text, f"{name}:\n{text}"
    assert len(calls(lab)) == script_calls           # failback.sh: no stop, no start, no status
    assert "event=restart.resumed" in new["server1"], new["server1"]
    assert "event=peer.restarting" in new["server2"] and "event=peer.resumed" in new["server2"], new["server2"]
    assert "is dead" not in new["server2"] and "event=path.dead" not in new["server2"]
    assert a2.status()["peer"]["generation"] == before["generation"]
    assert not a1.host.path(RECORD).exists()


def test_a_stale_record_is_not_continued_the_agent_starts_as_after_a_stop(pair: Pair) -> None:
    lab = pair.lab
    a1, _a2 = pair.start(FAST)
    settled(pair)
    generation = a1.status()["generation"]
    a1.stop()
    wait_until(lambda: has_vip(lab, "server2"), 10, "server2 to take over")
    # What a restart in place 60 s ago would have left, with server1's VIP still on its interface.
    record = {"format": 1, "node": "server1", "peer": "server2", "generation": generation, "seq": 50,
              "written_at": time.time() - 60, "max_age": 10.0, "held": "local", "failed": "none",
              "peer_held": "none", "peer_stable": True, "needs_failback": False, "peer_status": "active",
              "peer_hg": 1, "peer_max_seq": 1, "peer_dt": 1.0, "peer_uuid": "", "groups": [], "version": "0"}
    a1.host.write(RECORD, json.dumps(record), mode=0o600)
    a1.host.run(["ip", "addr", "add", f"{lab.vip}/24", "dev", "eth0"])
    log_from = len(a1.ha_log())
    pair.agent("server1")
    wait_until(lambda: a1.status()["stable"] and a1.status()["hold"] == "local", 15, "server1 to take its group back")
    text = a1.ha_log()[log_from:]
    assert "event=restart.not_resumed" in text and re.search(r"it is 6\d\.\d s old", text), text
    assert "event=vip.stale_removed" in text, text          # as after kill -9: the stale copy goes first
    assert a1.status()["generation"] == generation + 1
    assert not a1.host.path(RECORD).exists()
