"""The role, the unit and the agent on systemd-booted Debian hosts (issue 16).

Most hosts site.yml meets run systemd as PID 1: the role takes its systemd branch, the agent runs under
hbvip.service (Type=notify, the sandbox, Restart=), and operators read `journalctl -u hbvip`. One pair of
systemd hosts (lab/systemd.py) is provisioned per module with engine `agent`; the tests run in order on
it and leave it as they found it (VIP on server1, both agents active). The last one switches the pair to
Debian's own heartbeat.service.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.systemd import SystemdHost, cgroup_roots, nspawn_unavailable
from ansible_lab import FAST_TIMERS, SECRET, SITE, AnsibleLab, agent_status, assert_ok, playbook, recap
from pair import wait_until

pytestmark = pytest.mark.timeout(600)

DEMO_UNIT = """[Unit]
Description=hbvip lab: a service the resource script starts

[Service]
ExecStart=/bin/sh -c 'date > /etc/hbvip-demo.started; exec sleep infinity'
"""
# The resource script starts a real service with systemctl from inside hbvip.service's sandbox
# (ProtectSystem=strict, NoNewPrivileges, seccomp): systemd runs the service outside it.
DEMO_SCRIPT = """case "$1" in
  start) exec systemctl start hbvip-demo.service ;;
  stop) exec systemctl stop hbvip-demo.service ;;
  status) systemctl is-active --quiet hbvip-demo.service && echo running || echo stopped ;;
esac
"""


@pytest.fixture(scope="module")
def systemd_support(lab_support: None) -> None:
    reason = nspawn_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def sd_pair(systemd_support: None, wheelhouse: Path) -> Iterator[AnsibleLab]:
    with Lab(prefix=f"sd{os.getpid()}p", net=None, systemd=True) as lab:
        print(f"systemd hosts booted in {max(lab.boot_seconds.values()):.1f} s: {lab.boot_seconds}")
        for host in lab.hosts.values():
            host.write("/etc/systemd/system/hbvip-demo.service", DEMO_UNIT)
            host.run(["systemctl", "daemon-reload"])
        extra = {
            "heartbeat_vip_engine": "agent",
            "heartbeat_vip_vip": {"address": lab.vip, "prefix": 24},
            "heartbeat_vip_auth_secret": SECRET,
            "heartbeat_vip_agent_wheel_find_links": str(wheelhouse),
            "heartbeat_vip_failback_script_body": DEMO_SCRIPT,
            **FAST_TIMERS,
        }
        inventory = lab.write_inventory(lab.dir / "inventory.yml", group="hbvip_pairs", extra_vars=extra)
        yield AnsibleLab(lab, inventory, extra)


def hosts(p: AnsibleLab) -> tuple[SystemdHost, SystemdHost]:
    s1, s2 = p.lab.hosts["server1"], p.lab.hosts["server2"]
    assert isinstance(s1, SystemdHost) and isinstance(s2, SystemdHost)
    return s1, s2


def show(host: SystemdHost, prop: str, unit: str = "hbvip") -> str:
    return host.run(["systemctl", "show", "-p", prop, "--value", unit]).stdout.strip()


def holds_vip(lab: Lab, host: SystemdHost) -> bool:
    return f"{lab.vip}/24" in host.addresses()


def double_holder_times(lab: Lab, until: float) -> list[float]:
    """Poll both hosts' addresses until `until`; the times at which both carried the VIP."""
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    both = []
    while time.monotonic() < until:
        t = time.monotonic()
        if holds_vip(lab, s1) and holds_vip(lab, s2):
            both.append(t)
        time.sleep(0.01)
    return both


def journal(host: SystemdHost, *args: str) -> str:
    return host.run(["journalctl", "-u", "hbvip", "--no-pager", "-o", "cat", *args]).stdout


def holder_journal(host: SystemdHost, since: str) -> str:
    """What an operator reads: `journalctl -u hbvip` with times (systemd's own lines included)."""
    return host.run(["journalctl", "-u", "hbvip", "--no-pager", "--since", since]).stdout


def test_systemd_lab_host_boots_reboots_powers_off_and_leaves_nothing(systemd_support: None) -> None:
    """The lab part: own hostname and machine-id, sshd on the lab address only, reboot keeps the disk
    and gives a fresh /run, power off is immediate, and teardown leaves no cgroup, mount or namespace."""
    prefix = f"sb{os.getpid()}"
    lab = Lab(prefix=prefix, net=None, hosts=("server1",), systemd=True)
    with lab:
        s1 = lab.hosts["server1"]
        assert isinstance(s1, SystemdHost)
        print(f"boot: {lab.boot_seconds['server1']:.2f} s")
        assert s1.run(["hostname"]).stdout.strip() == "server1"
        assert s1.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
        assert s1.run(["cat", "/etc/machine-id"]).stdout != Path("/etc/machine-id").read_text()
        listening = s1.run(["ss", "-Hltn"]).stdout.split()
        assert f"{s1.address}:22" in listening and "0.0.0.0:22" not in listening
        for unit in ("keepalived", "logd", "heartbeat"):
            assert s1.run(["systemctl", "is-active", unit], check=False).stdout.strip() != "active"
        # Heartbeat's `pkill -9 heartbeat` sees the container's PID namespace only: not this test.
        assert s1.run(["pgrep", "-f", "pytest"], check=False).returncode == 1
        s1.write("/var/lib/heartbeat/disk", "kept")
        s1.write("/run/volatile", "gone")
        print(f"reboot: {s1.reboot():.2f} s")
        assert s1.read("/var/lib/heartbeat/disk") == "kept"
        assert not s1.path("/run/volatile").exists()
        s1.power_off()
        assert s1.anchor is not None and s1.anchor.poll() is not None
        print(f"boot after power off: {s1.boot():.2f} s")
        assert s1.read("/var/lib/heartbeat/disk") == "kept"
        cgroups = [root / s1.cgroup for root in cgroup_roots()]
    assert not any(cg.exists() for cg in cgroups)
    assert not any(Path("/run/netns", f"{prefix}-{n}").exists() for n in ("br", "client", "server1"))
    assert str(lab.dir) not in Path("/proc/self/mountinfo").read_text()
    assert not lab.dir.exists()


def test_site_yml_agent_engine_on_systemd_and_rerun_changes_nothing(sd_pair: AnsibleLab) -> None:
    assert_ok(sd_pair.first)
    print(f"fresh site.yml (agent, systemd hosts): {sd_pair.seconds:.1f} s")
    lab = sd_pair.lab
    s1, s2 = hosts(sd_pair)
    for host in (s1, s2):
        assert show(host, "Type") == "notify"
        assert show(host, "ActiveState") == "active"
        assert host.run(["systemctl", "is-enabled", "hbvip"]).stdout.strip() == "enabled"
        assert show(host, "FragmentPath") == "/etc/systemd/system/hbvip.service"  # the role's systemd branch
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=15)
    finally:
        probe.stop()
    assert holds_vip(lab, s1) and not holds_vip(lab, s2)
    started = time.monotonic()
    rerun = playbook(lab, sd_pair.inventory)
    print(f"rerun site.yml (agent, systemd hosts): {time.monotonic() - started:.1f} s")
    assert_ok(rerun)
    counts = recap(rerun)
    assert set(counts) >= {"server1", "server2"}
    assert all(c["changed"] == 0 for c in counts.values()), counts


def test_unit_sandbox_applies_and_security_score_is_at_most_3(sd_pair: AnsibleLab) -> None:
    s1, _s2 = hosts(sd_pair)
    out = s1.run(["systemd-analyze", "security", "hbvip", "--no-pager"]).stdout
    score = float(re.search(r"Overall exposure level for hbvip\.service: ([\d.]+)", out).group(1))
    print(f"systemd-analyze security hbvip: {score}")
    assert score <= 3.0, out[-2000:]
    status = s1.read(f"/proc/{show(s1, 'MainPID')}/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    # CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13) and nothing else.
    assert int(fields["CapBnd"], 16) == (1 << 10) | (1 << 12) | (1 << 13)
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"


def test_resource_script_starts_a_real_service_with_systemctl_from_the_sandbox(sd_pair: AnsibleLab) -> None:
    s1, s2 = hosts(sd_pair)
    wait_until(lambda: show(s1, "ActiveState", "hbvip-demo") == "active", 10, "hbvip-demo on server1")
    assert show(s2, "ActiveState", "hbvip-demo") == "inactive"
    # It wrote /etc, which the agent's sandbox (ProtectSystem=strict) could not: it ran outside it.
    assert s1.path("/etc/hbvip-demo.started").exists()


def test_kill_9_of_the_main_pid_restarts_with_a_short_gap_and_no_lasting_double_vip(sd_pair: AnsibleLab) -> None:
    lab = sd_pair.lab
    s1, s2 = hosts(sd_pair)
    pid, restarts = show(s1, "MainPID"), int(show(s1, "NRestarts"))
    since = s1.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=10)
        killed = lab.now()
        s1.run(["kill", "-9", pid])
        both = double_holder_times(lab, until=killed + 3)
        wait_until(lambda: show(s1, "ActiveState") == "active" and show(s1, "MainPID") != pid, 10, "restart")
        probe.wait_for("server1", timeout=10)
        time.sleep(0.3)
    finally:
        result = probe.stop()
    print(holder_journal(s1, since))
    print(s1.run(["systemctl", "status", "hbvip", "--no-pager", "-n", "0"], check=False).stdout)
    print(f"kill -9: longest client gap {result.longest_gap() * 1000:.0f} ms, holders {result.holders()}, "
          f"both hosts held the VIP until +{(max(both) - killed) * 1000 if both else 0:.0f} ms")
    assert int(show(s1, "NRestarts")) == restarts + 1
    assert result.longest_gap() <= 1.0
    # Both hosts carry the VIP from the peer's takeover until the restarted agent removes its stale copy:
    # RestartSec (100 ms) plus the agent's start-up, which a loaded 2-core CI machine stretches to ~1 s.
    assert not both or max(both) - killed <= 2.0, both
    assert holds_vip(lab, s1) and not holds_vip(lab, s2)


@pytest.mark.parametrize("action", ["restart", "reload", "stop"])
def test_systemctl_on_the_holder_costs_at_most_50_ms(sd_pair: AnsibleLab, action: str) -> None:
    lab = sd_pair.lab
    s1, s2 = hosts(sd_pair)
    pid = show(s1, "MainPID")
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=10)
        s1.run(["systemctl", action, "hbvip"])
        if action == "stop":
            probe.wait_for("server2", timeout=10)
            s1.run(["systemctl", "start", "hbvip"])
        probe.wait_for("server1", timeout=10)
        time.sleep(0.5)
    finally:
        result = probe.stop()
    print(f"systemctl {action}: longest client gap {result.longest_gap() * 1000:.1f} ms, holders {result.holders()}")
    assert result.longest_gap() <= 0.05, result.gaps()
    assert (show(s1, "MainPID") == pid) == (action == "reload")
    assert holds_vip(lab, s1) and not holds_vip(lab, s2)
    if action == "reload":
        assert result.holders() == ["server1"]
        assert "event=config.reload" in journal(s1, "-n", "20") or "reload" in journal(s1, "-n", "20").lower()


def test_restart_in_place_keeps_the_main_pid_the_vip_and_the_scripts_service(sd_pair: AnsibleLab) -> None:
    """`hbvip restart-in-place` under hbvip.service: the new agent runs in the same process (exec inside the
    sandbox), so systemd sees no stop; the service the resource script started is not stopped or started."""
    lab = sd_pair.lab
    s1, s2 = hosts(sd_pair)
    pid, restarts = show(s1, "MainPID"), int(show(s1, "NRestarts"))
    demo_since = show(s1, "ActiveEnterTimestampMonotonic", "hbvip-demo")
    generation = agent_status(s1)["generation"]
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=10)
        done = s1.run(["/opt/hbvip/venv/bin/hbvip", "restart-in-place", "--timeout", "20"], check=False)
        time.sleep(0.5)
    finally:
        result = probe.stop()
    print(done.stdout, done.stderr, journal(s1, "-n", "12"), sep="\n")
    print(f"restart in place: longest client gap {result.longest_gap() * 1000:.1f} ms, holders {result.holders()}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (show(s1, "MainPID"), int(show(s1, "NRestarts")), show(s1, "ActiveState")) == (pid, restarts, "active")
    assert show(s1, "ActiveEnterTimestampMonotonic", "hbvip-demo") == demo_since
    assert result.holders() == ["server1"] and result.longest_gap() <= 0.05, result.gaps()
    assert agent_status(s1)["generation"] == generation and "event=restart.resumed" in journal(s1, "-n", "30")
    assert holds_vip(lab, s1) and not holds_vip(lab, s2)


def test_power_off_journal_shows_heartbeats_classic_lines_and_logfile_keeps_them(sd_pair: AnsibleLab) -> None:
    lab = sd_pair.lab
    s1, s2 = hosts(sd_pair)
    since = s2.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=10)
        lost = lab.now()
        s1.power_off()
        probe.wait_for("server2", timeout=10, after=lost)
        text = journal(s2, "--since", since)
        print(holder_journal(s2, since))
        assert "node server1: is dead" in text, text
        assert "Resources being acquired from server1." in text, text
        logfile = s2.read("/var/log/ha-log")
        assert "node server1: is dead" in logfile and "Resources being acquired from server1." in logfile
        booted = s1.boot()
        back = probe.wait_for("server1", timeout=20)
        print(f"power off: server1 booted in {booted:.2f} s, VIP home {back - lost:.2f} s after the power loss")
    finally:
        probe.stop()
    assert holds_vip(lab, s1) and not holds_vip(lab, s2)


def test_reboot_brings_the_vip_home_and_never_two_holders_after_settling(sd_pair: AnsibleLab) -> None:
    lab = sd_pair.lab
    s1, s2 = hosts(sd_pair)
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=10)
        started = lab.now()
        booted = s1.reboot()
        home = probe.wait_for("server1", timeout=20, after=started + booted)
        print(f"reboot: boot {booted:.2f} s, VIP home {home - started - booted:.2f} s after the boot finished")
        both = double_holder_times(lab, until=time.monotonic() + 1.5)
        assert both == []
        assert holds_vip(lab, s1) and not holds_vip(lab, s2)
        # Heartbeat's own last resort, `reboot -nf` (reboot(2)), acts on its container only: the backup
        # comes back, the holder and its systemd are untouched.
        leader = s1.leader
        s2_booted = s2.boots
        lab.run_controller(["ssh", "-i", str(lab.ssh_key), "-o", "StrictHostKeyChecking=no", "-o",
                            "UserKnownHostsFile=/dev/null", f"root@{s2.address}", "reboot -nf"], check=False)
        s2.wait_rebooted(timeout=60)
        assert s2.boots == s2_booted + 1 and s1.leader == leader
        wait_until(lambda: agent_status(s2)["peer"]["state"] == "active", 20, "server2 rejoined")
    finally:
        result = probe.stop()
    assert result.holders()[-1] == "server1"
    assert holds_vip(lab, s1) and not holds_vip(lab, s2)


# Only the role's service tasks, on one host: the refused stop is checked without a whole site.yml run.
SERVICE_ONLY = """- name: The role's service tasks only
  hosts: server2
  gather_facts: true
  tasks:
    - name: Start the engine, stopping the other one
      ansible.builtin.include_role:
        name: heartbeat_vip
        tasks_from: service
      vars:
        # what main.yml's look would have read; the systemd stop does not depend on it
        __heartbeat_vip_on_host: {}
"""


def test_other_engines_failing_stop_fails_the_run_then_debians_heartbeat_service_takes_over(
        sd_pair: AnsibleLab) -> None:
    """Switch the pair to engine heartbeat (Debian's heartbeat.service). First with a stop of hbvip that
    systemd refuses on server2: the role's stop task fails there, loudly, instead of starting a second
    engine; then for real with site.yml: heartbeat.service on both, hbvip stopped and disabled, VIP on
    server1, Heartbeat's takeover after a power loss."""
    lab = sd_pair.lab
    s1, s2 = hosts(sd_pair)
    s2.write("/etc/systemd/system/hbvip.service.d/refuse-stop.conf", "[Unit]\nRefuseManualStop=yes\n")
    s2.run(["systemctl", "daemon-reload"])
    service_only = lab.dir / "service-only.yml"
    service_only.write_text(SERVICE_ONLY)
    refused = lab.run_controller(
        ["ansible-playbook", "-i", str(sd_pair.inventory), str(service_only), "-e", "heartbeat_vip_engine=heartbeat"],
        check=False, timeout=300,
        env={"ANSIBLE_PIPELINING": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_ROLES_PATH": str(SITE.parent / "roles")},
    )
    assert refused.returncode != 0
    before_failure = refused.stdout.partition("fatal: [server2]")[0]
    failed_task = re.findall(r"TASK \[heartbeat_vip : ([^\]]+)\]", before_failure)[-1:]
    assert failed_task == ["Stop the other engine (systemd)"], refused.stdout[-3000:]
    assert "refuse" in refused.stdout.lower(), refused.stdout[-3000:]
    assert show(s2, "ActiveState") == "active" and show(s2, "ActiveState", "heartbeat") != "active"
    s2.path("/etc/systemd/system/hbvip.service.d/refuse-stop.conf").unlink()
    s2.run(["systemctl", "daemon-reload"])

    started = time.monotonic()
    switched = playbook(lab, sd_pair.inventory, "-e", "heartbeat_vip_engine=heartbeat")
    print(f"site.yml switching to engine heartbeat: {time.monotonic() - started:.1f} s")
    assert_ok(switched)
    for host in (s1, s2):
        assert show(host, "ActiveState", "heartbeat") == "active"
        assert show(host, "ActiveState") == "inactive"
        assert host.run(["systemctl", "is-enabled", "hbvip"], check=False).stdout.strip() == "disabled"
    probe = lab.probe()
    try:
        probe.wait_for("server1", timeout=30)
        lost = lab.now()
        s1.power_off()
        moved = probe.wait_for("server2", timeout=20, after=lost)
        print(f"heartbeat.service: VIP on server2 {moved - lost:.2f} s after server1's power loss")
        assert "node server1: is dead" in s2.read("/var/log/ha-log")
        s1.boot()
        probe.wait_for("server1", timeout=30)
    finally:
        probe.stop()
    assert holds_vip(lab, s1) and not holds_vip(lab, s2)
