"""The operator's view on the lab: reloads that do not blink the VIP, metrics that follow a failover,
check-config findings against the live host, log lines that reach syslog."""

from __future__ import annotations

import json
import signal
import sys
import time

from pair import FAST, Agent, Timers, ha_cf, has_vip, holds_for, install, wait_until

# FAST and a second timer set the reloads alternate between.
QUICKER = Timers("100ms", "400ms", "800ms", "2")
METRICS = "http://127.0.0.1:9694/metrics"


def haresources(lab, second: bool) -> str:
    text = f"server1 IPaddr::{lab.vip}/24/eth0 failback.sh\n"
    return text + (f"server2 IPaddr::{second_vip(lab)}/24/eth0\n" if second else "")


def second_vip(lab) -> str:
    return lab.addr(101)


def holds(lab, host: str, ip: str) -> bool:
    return any(a.startswith(ip + "/") for a in lab.hosts[host].addresses())


def reconfigure(lab, timers: Timers, second: bool, peer2: str = "server2") -> None:
    """What the role (or an operator) does before a reload: the same new files on both hosts."""
    for h in lab.hosts.values():
        h.write("/etc/ha.d/ha.cf", ha_cf(timers).replace("ucast eth0 server2", f"ucast eth0 {peer2}"))
        h.write("/etc/ha.d/haresources", haresources(lab, second))


def test_five_reloads_changing_timers_and_groups_never_drop_the_unchanged_vip(lab):
    install(lab, FAST)
    agents = [Agent(lab.hosts[n]).start() for n in ("server1", "server2")]
    probe = lab.probe(interval=0.01)
    try:
        t_served = probe.wait_for("server1", timeout=10)
        wait_until(lambda: all(a.status()["stable"] and a.status()["peer"]["state"] == "active" for a in agents),
                   10, "both nodes stable", interval=0.2)
        # server2 gets a second fixed address; the last reload moves server1's heartbeats to it
        moved = lab.addr(12)
        lab.hosts["server2"].run(["ip", "addr", "add", f"{moved}/24", "dev", "eth0"])
        plan = [(QUICKER, True, "server2"), (FAST, False, "server2"), (QUICKER, True, "server2"),
                (FAST, False, "server2"), (QUICKER, False, moved)]
        for n, (timers, second, peer2) in enumerate(plan):
            reconfigure(lab, timers, second, peer2)
            for a in agents:
                if n % 2:
                    assert "reloaded" in a.cli("reload").stdout     # the role's reload handler
                else:
                    a.kill(signal.SIGHUP)
            want = timers.keepalive_s
            wait_until(lambda: all(a.status()["timers"]["keepalive"] == want for a in agents), 10, f"reload {n + 1}",
                       interval=0.2)
            if second:   # added: acquired by its home node only
                wait_until(lambda: holds(lab, "server2", second_vip(lab)), 10, "server2 to acquire the added group")
                assert not holds(lab, "server1", second_vip(lab))
            else:        # removed: released, by nobody any more
                wait_until(lambda: not any(holds(lab, h, second_vip(lab)) for h in lab.hosts), 10, "removal")
            wait_until(lambda: all(a.status()["stable"] for a in agents), 5, "both nodes stable", interval=0.1)
        assert agents[0].status()["peer"]["addresses"] == [moved]
        # heartbeats now travel to the new address only
        holds_for(lambda: all(a.status()["peer"]["state"] == "active" for a in agents), 3 * QUICKER.deadtime_s,
                  "both peers active", interval=0.2)
        result = probe.stop()
        window = [(t, h) for t, h in result.samples if t >= t_served]
        lost = [t for t, h in window if h is None]
        assert len(window) > 300 and lost == [], f"{len(lost)} of {len(window)} probes of {lab.vip} lost"
        assert result.holders() == ["server1"]
        log2 = agents[1].ha_log()
        assert log2.count("event=group.acquire group=IPaddr::" + second_vip(lab)) == 2
        assert log2.count("event=group.release group=IPaddr::" + second_vip(lab)) == 2
        st = agents[0].status()
        assert [g["key"] for g in st["groups"]] == [f"IPaddr::{lab.vip}/24/eth0"]
        assert st["timers"]["deadtime"] == 0.8 and st["groups"][0]["transitions"] == 1
    finally:
        probe.stop()
        for a in agents:
            a.stop()


def scrape(host) -> dict[str, float]:
    """curl the endpoint from inside the host (it listens on the host's loopback only)."""
    text = host.run(["curl", "-sf", "--max-time", "3", METRICS]).stdout
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_endpoint_follows_a_failover(lab):
    install(lab, FAST)
    for h in lab.hosts.values():
        h.write("/etc/ha.d/hbvip.cf", "metrics_listen on\nmetrics_textfile /var/lib/node_exporter/hbvip.prom\n")
    a1, a2 = (Agent(lab.hosts[n]).start() for n in ("server1", "server2"))
    group = f'group="IPaddr::{lab.vip}/24/eth0",home_node="server1"'
    try:
        wait_until(lambda: has_vip(lab, "server1") and a2.status()["peer"]["state"] == "active", 10, "server1 serving")
        wait_until(lambda: scrape(lab.hosts["server1"]).get(f"hbvip_group_holder{{{group}}}") == 1, 5, "metrics")
        before1, before2 = scrape(lab.hosts["server1"]), scrape(lab.hosts["server2"])
        assert before2[f"hbvip_group_holder{{{group}}}"] == 0
        assert before2[f"hbvip_group_transitions_total{{{group}}}"] == 0
        assert before2['hbvip_peer_state{peer="server1",state="active"}'] == 1
        assert before1[f"hbvip_group_transitions_total{{{group}}}"] == 1
        # the endpoint is loopback only: the client cannot reach it on the host's address
        probe = lab.client.run(["curl", "-s", "--max-time", "1", f"http://{lab.hosts['server2'].address}:9694/metrics"],
                               check=False)
        assert probe.returncode != 0

        lab.hosts["server1"].power_loss([a1.proc])
        wait_until(lambda: has_vip(lab, "server2"), FAST.deadtime_s + 3, "server2 to take over")
        after = wait_until(lambda: (m := scrape(lab.hosts["server2"]))[f"hbvip_group_holder{{{group}}}"] == 1 and m,
                           3, "server2's metrics to show the takeover")
        assert after[f"hbvip_group_transitions_total{{{group}}}"] == 1
        assert after['hbvip_peer_state{peer="server1",state="dead"}'] == 1
        took = after[f"hbvip_group_last_takeover_duration_seconds{{{group}}}"]
        assert 0 < took < 1.0
        assert abs(after[f"hbvip_group_last_takeover_timestamp_seconds{{{group}}}"] - time.time()) < 10
        assert after["hbvip_script_runs_total"] > before2["hbvip_script_runs_total"]

        def textfile() -> str | None:
            text = lab.hosts["server2"].read("/var/lib/node_exporter/hbvip.prom")
            return text if f"hbvip_group_holder{{{group}}} 1" in text else None

        text = wait_until(textfile, 3, "the textfile to follow")
        assert 'hbvip_peer_state{peer="server1",state="dead"} 1' in text
    finally:
        a1.stop()
        a2.stop()


def check_config(host, *extra: str) -> dict:
    out = host.run([sys.executable, "-m", "hbvip.cli", "check-config", "--json", *extra], check=False, timeout=30)
    assert out.returncode in (0, 2), out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] == (out.returncode == 0)
    return report


def errors(report: dict) -> list[tuple[str, int, str]]:
    return [(p["path"], p["line"], p["message"]) for p in report["problems"] if p["severity"] == "error"]


def test_check_config_finds_a_foreign_subnet_and_an_address_already_in_use(lab):
    install(lab, FAST)
    s1 = lab.hosts["server1"]
    outside = f"10.99.{(lab.net + 128) % 256}.100"
    s1.write("/etc/ha.d/haresources", f"# the pair's VIPs\nserver1 IPaddr::{lab.vip}/24/eth0 failback.sh\n"
                                      f"server1 IPaddr::{outside}/24/eth0\n")
    report = check_config(s1)
    assert errors(report) == [("/etc/ha.d/haresources", 3,
                               f"VIP {outside} is outside every subnet on eth0 ({s1.address}/24); "
                               "clients on that network could not reach it")]
    assert any(f"ARP probe of {lab.vip} on eth0: no other machine answers" == n for n in report["notes"])

    s1.write("/etc/ha.d/haresources", f"server1 IPaddr::{lab.vip}/24/eth0 failback.sh\n")
    lab.client.run(["ip", "addr", "add", f"{lab.vip}/24", "dev", lab.client.iface])
    report = check_config(s1)
    [(path, line, message)] = errors(report)
    assert (path, line) == ("/etc/ha.d/haresources", 1)
    assert f"VIP {lab.vip} is already answered on eth0 by another machine (MAC {lab.client.mac})" == message
    lab.client.run(["ip", "addr", "del", f"{lab.vip}/24", "dev", lab.client.iface])

    # the running pair's own VIP is no conflict: skipped on the holder and on its peer
    a1, a2 = (Agent(lab.hosts[n]).start() for n in ("server1", "server2"))
    try:
        wait_until(lambda: has_vip(lab, "server1") and a2.status()["groups"][0]["holder"] == "server1", 10, "pair up")
        r1, r2 = check_config(s1), check_config(lab.hosts["server2"])
        assert r1["ok"] and r2["ok"]
        assert f"ARP probe of {lab.vip} skipped: this node holds it" in r1["notes"]
        assert f"ARP probe of {lab.vip} skipped: the pair holds it (server1)" in r2["notes"]
    finally:
        a1.stop()
        a2.stop()


SYSLOG_LISTENER = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1], "a", buffering=1) as out:
    out.write("ready\\n")
    while True:
        out.write(s.recv(65536).decode(errors="replace").replace("\\n", " ") + "\\n")
"""


def test_logfacility_sends_classic_and_structured_lines_to_syslog(lab):
    """The agent logs through the C library's syslog(3), which always writes to /dev/log. The lab's
    /dev is the real machine's, so this host gets a private overlay over /dev (in its own mount
    namespace: the real /dev never sees it) and a listener bound at /dev/log plays syslogd."""
    install(lab, FAST, hosts=("server1",))
    s1 = lab.hosts["server1"]
    s1.write("/etc/ha.d/ha.cf", s1.read("/etc/ha.d/ha.cf") + "logfacility local7\n")
    s1.run("mkdir -p /run/devlayer/up /run/devlayer/work && mount -t overlay devlayer "
           "-o lowerdir=/dev,upperdir=/run/devlayer/up,workdir=/run/devlayer/work /dev")
    capture = s1.path("/var/log/syslog-capture.log")
    listener = s1.spawn([sys.executable, "-c", SYSLOG_LISTENER, "/var/log/syslog-capture.log"])
    agent = None
    try:
        wait_until(lambda: capture.exists() and capture.read_text().startswith("ready"), 5, "syslog listener")
        agent = Agent(s1).start()
        wait_until(lambda: has_vip(lab, "server1"), 10, "server1 alone to take the VIP after initdead")
        wait_until(lambda: "event=resources.acquired" in capture.read_text(), 5, "the acquisition in syslog")
        lines = capture.read_text().splitlines()
        local7_info = "<190>"          # facility local7 (23) * 8 + severity info (6)
        started = [ln for ln in lines if "Configuration validated. Starting hbvip" in ln]
        assert started and started[0].startswith(local7_info) and "hbvip[" in started[0]
        assert any(ln.startswith(local7_info) and "event=start node=server1" in ln for ln in lines)
        assert any("event=group.acquire" in ln for ln in lines)
    finally:
        if agent is not None:
            agent.stop()
        s1.kill(listener, signal.SIGTERM)
        listener.wait(5)
