"""The lab itself: what the failover tests, the role tests and the bench rely on it for."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab import Lab, ProbeResult
from lab import registry
from lab.jitter import start as start_jitter
from lab.probe import agent_cmd, stop_proc
from pair import wait_until

VENV_BIN = Path(sys.executable).parent


def _ping(lab: Lab, address: str, tries: int = 1) -> bool:
    assert lab.client is not None
    return any(lab.client.run(["ping", "-c", "1", "-W", "1", address], check=False).returncode == 0
               for _unused in range(tries))


def _leftovers(prefix: str, workdir: Path) -> list[str]:
    """Anything a torn-down lab could have left behind: namespaces, registry entry, files, mounts."""
    found = [ns for ns in subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True)
             .stdout.split() if ns.startswith(prefix + "-")]
    if (registry.REGISTRY / f"{prefix}.json").exists():
        found.append("registry entry")
    if workdir.exists():
        found.append(str(workdir))
    for mountinfo in Path("/proc").glob("[0-9]*/mountinfo"):
        try:
            if str(workdir) in mountinfo.read_text():
                found.append(f"mount in {mountinfo}")
        except OSError:
            continue  # process ended while we looked
    return found


def test_each_host_has_its_own_hostname_and_resolves_the_others(lab: Lab) -> None:
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    assert s1.run("hostname").stdout.strip() == "server1"
    assert s2.run("uname -n").stdout.strip() == "server2"
    assert s2.run("cat /etc/hostname").stdout.strip() == "server2"
    assert s1.run(["getent", "hosts", "server2"]).stdout.split()[0] == s2.address
    assert s2.run(["getent", "hosts", "server1"]).stdout.split()[0] == s1.address
    assert os.uname().nodename not in {"server1", "server2"}


def test_files_in_one_host_are_invisible_to_the_other_and_the_machine(lab: Lab) -> None:
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    name = f"lab-private-{lab.prefix}"
    s1.run(f"echo s1 > /etc/ha.d/{name} && echo s1 > /etc/{name} && echo s1 > /root/{name}")
    assert s1.root.joinpath("etc/ha.d", name).read_text() == "s1\n"
    assert s1.path(f"/etc/{name}").read_text() == "s1\n"
    for p in (f"/etc/ha.d/{name}", f"/etc/{name}", f"/root/{name}"):
        assert s2.run(["test", "-e", p], check=False).returncode == 1, p
        assert not Path(p).exists(), p
    # a fresh host still sees the packaged Heartbeat resource scripts
    assert s2.run(["test", "-x", "/etc/ha.d/resource.d/IPaddr"], check=False).returncode == 0


def test_client_reaches_both_fixed_addresses(lab: Lab) -> None:
    assert _ping(lab, lab.hosts["server1"].address)
    assert _ping(lab, lab.hosts["server2"].address)


def test_probe_follows_a_moved_vip_and_arpwatch_sees_the_gratuitous_arp(lab: Lab) -> None:
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    vip = f"{lab.vip}/{lab.prefix_len}"
    probe = lab.probe(interval=0.005)
    s1.run(["ip", "addr", "add", vip, "dev", "eth0"])
    probe.wait_for("server1", timeout=5)
    assert lab.client_neigh(lab.vip) == s1.mac
    arp = lab.arpwatch()

    s1.run(["ip", "addr", "del", vip, "dev", "eth0"])
    removed = lab.now()
    time.sleep(0.3)
    s2.run(["ip", "addr", "add", vip, "dev", "eth0"])
    s2.run(["arping", "-U", "-c", "1", "-I", "eth0", lab.vip])
    probe.wait_for("server2", timeout=5, after=removed)
    result = probe.stop()
    frames = arp.stop()

    assert result.holders() == ["server1", "server2"]
    assert result.holder_at(removed - 0.05) == "server1"
    assert 0.3 <= result.longest_gap() < 2.0
    first_s2 = result.first_answer_from("server2", after=removed)
    assert first_s2 is not None and first_s2 - removed >= 0.3
    garps = [f for f in frames if f.gratuitous and f.sender_ip == lab.vip]
    assert [f.sender_mac for f in garps] == [s2.mac]
    assert lab.client_neigh(lab.vip) == s2.mac


def test_has_address_sees_what_ip_shows_in_both_families(lab_factory: Callable[..., Lab]) -> None:
    """The procfs answer the holder watches poll agrees with `ip addr` as an address comes and goes, on
    the host that has it only; 10.99.x.10, whose text begins the VIP's 10.99.x.100, is not it."""
    lab = lab_factory(ipv6=True)
    s1, s2 = lab.hosts["server1"], lab.hosts["server2"]
    near = lab.vip.rsplit(".", 1)[0] + ".10"

    def seen() -> list[tuple[bool, ...]]:
        return [(h.has_address(lab.vip), h.has_address(lab.vip6), h.has_address(near),
                 any(a.startswith(lab.vip + "/") for a in h.addresses()),
                 any(a.startswith(lab.vip6 + "/") for a in h.addresses(6))) for h in (s1, s2)]

    assert s1.has_address(s1.address) and s1.has_address(s1.address6) and not s1.has_address(s2.address)
    assert seen() == [(False, False, False, False, False)] * 2
    s1.run(["ip", "addr", "add", f"{lab.vip}/24", "dev", "eth0"])
    s1.run(["ip", "addr", "add", f"{lab.vip6}/64", "dev", "eth0", "nodad"])
    assert seen() == [(True, True, False, True, True), (False, False, False, False, False)]
    s1.run(["ip", "addr", "del", f"{lab.vip}/24", "dev", "eth0"])
    s1.run(["ip", "addr", "del", f"{lab.vip6}/64", "dev", "eth0"])
    assert seen() == [(False, False, False, False, False)] * 2


def test_power_loss_silences_the_host_and_power_on_brings_back_only_the_fixed_address(lab: Lab) -> None:
    s1 = lab.hosts["server1"]
    s1.run(["ip", "addr", "add", f"{lab.vip}/24", "dev", "eth0"])
    victim = s1.spawn(["sleep", "60"])
    s1.power_loss([victim])
    assert victim.returncode == -9
    assert not _ping(lab, s1.address)
    assert s1.addresses() == [f"{s1.address}/24"]
    s1.power_on()
    assert _ping(lab, s1.address, tries=3)  # the client may need a second ARP round
    assert s1.addresses() == [f"{s1.address}/24"]


def test_host_refuses_to_kill_processes_that_are_not_its_own(lab: Lab) -> None:
    with pytest.raises(PermissionError):
        lab.hosts["server1"].kill(os.getpid())
    other = lab.hosts["server2"].spawn(["sleep", "60"])
    with pytest.raises(PermissionError):
        lab.hosts["server1"].kill(other)
    lab.hosts["server2"].kill(other)
    assert other.wait(timeout=5) == -15


def test_a_reaped_process_number_is_no_longer_the_hosts(lab: Lab) -> None:
    """pids wrap (pid_max 32768): a number we spawned on a host and that was reaped may come back as
    any process of the machine; the host must not claim it (nor signal it) because we once had it."""
    s1 = lab.hosts["server1"]
    ended = s1.spawn(["true"])
    assert ended.wait(timeout=5) == 0
    s1.kill(ended)                    # already gone: nothing to do, no error
    # The number now belongs to a process outside the lab (this test's own): as if it had been reused.
    ended.pid = os.getpid()
    s1.track(ended)
    assert not s1.owns_pid(os.getpid())
    with pytest.raises(PermissionError):
        s1.kill(os.getpid())


def test_teardown_leaves_nothing_even_when_the_body_raises(lab_prefix: Callable[[], str]) -> None:
    prefix = lab_prefix()
    lab = Lab(prefix=prefix, net=None)
    with pytest.raises(RuntimeError, match="boom"):
        with lab:
            spawned = lab.hosts["server1"].spawn(["sleep", "60"])
            anchors = [h.anchor_pid for h in lab.hosts.values()]
            raise RuntimeError("boom")
    assert _leftovers(prefix, lab.dir) == []
    assert spawned.poll() is not None
    assert not any(Path(f"/proc/{pid}").exists() for pid in anchors)


def _pids_with_argv(argv: list[str]) -> list[int]:
    found = []
    wanted = "\0".join(argv).encode() + b"\0"
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if (entry / "cmdline").read_bytes() == wanted and not _zombie(entry):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _zombie(entry: Path) -> bool:
    return entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_teardown_ends_daemons_respawners_and_namespace_leavers(lab_prefix: Callable[[], str]) -> None:
    """What Heartbeat does in a host: daemonize (double fork, new session, parent gone, PPid 1) and fork
    again when a child dies. Plus a process that left the host's netns but keeps its mounts. None of
    them is a child of the test; teardown must still find and end every one."""
    prefix = lab_prefix()
    marker = f"{77000 + os.getpid() % 1000}.{len(prefix)}"        # a `sleep` argument nobody else uses
    sleeper = ["sleep", marker]
    lab = Lab(prefix=prefix, net=None)
    with lab:
        s1 = lab.hosts["server1"]
        s1.run(f"setsid sh -c 'sleep {marker} & echo $! > /run/daemon.pid' </dev/null >/dev/null 2>&1 &")
        s1.run(f"setsid sh -c 'trap \"\" TERM; while :; do sleep {marker}; done' </dev/null >/dev/null 2>&1 &")
        s1.run(f"setsid unshare --net sleep {marker} </dev/null >/dev/null 2>&1 &")
        # the pidfile is written by the backgrounded shell, after `run` returned
        wait_until(lambda: s1.path("/run/daemon.pid").exists() and s1.read("/run/daemon.pid").strip(), 5, "daemon.pid")
        daemon = int(s1.read("/run/daemon.pid"))
        wait_until(lambda: len(_pids_with_argv(sleeper)) == 3, 5, "three sleepers")
        started = _pids_with_argv(sleeper)
    assert _leftovers(prefix, lab.dir) == []
    assert daemon in started
    assert _pids_with_argv(sleeper) == [], f"outlived the lab (started {started})"


def test_parallel_labs_get_their_own_nets_and_a_used_prefix_is_refused(
    lab_factory: Callable[..., Lab],
) -> None:
    first, second = lab_factory(), lab_factory()
    assert first.net != second.net
    with pytest.raises(RuntimeError, match="in use"):
        Lab(prefix=first.prefix, net=None).start()
    assert _ping(first, first.hosts["server2"].address)


def test_four_hosts_make_two_pairs_on_one_bridge(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(hosts=("server1", "server2", "server3", "server4"))
    names = {h.run("hostname").stdout.strip() for h in lab.hosts.values()}
    assert names == {"server1", "server2", "server3", "server4"}
    assert len({h.mac for h in lab.hosts.values()}) == 4
    s3, s4 = lab.hosts["server3"], lab.hosts["server4"]
    assert s3.run(["ping", "-c", "1", "-W", "1", "server4"]).returncode == 0
    assert s4.run(["getent", "hosts", "server1"]).stdout.split()[0] == lab.hosts["server1"].address


def test_ssh_and_ansible_land_in_the_right_host(lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    lab = lab_factory(ssh=True)
    assert lab.ssh_key is not None
    s1 = lab.hosts["server1"]
    out = lab.run_controller(
        ["ssh", "-i", str(lab.ssh_key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", f"root@{s1.address}", "hostname"]
    )
    assert out.stdout.strip() == "server1"
    inventory = lab.write_inventory(tmp_path / "hosts.yml", extra_vars={"marker": "lab"})
    ping = lab.run_controller(
        [str(VENV_BIN / "ansible"), "-i", str(inventory), "pair", "-m", "ping"], check=False, timeout=120
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert ping.stdout.count("SUCCESS") == 2
    touched = lab.run_controller(
        [str(VENV_BIN / "ansible"), "-i", str(inventory), "server2", "-m", "copy",
         "-a", "dest=/etc/hbvlab-ansible content={{ marker }}"], check=False, timeout=120,
    )
    assert touched.returncode == 0, touched.stdout + touched.stderr
    assert lab.hosts["server2"].read("/etc/hbvlab-ansible") == "lab"
    assert not s1.path("/etc/hbvlab-ansible").exists()
    assert not Path("/etc/hbvlab-ansible").exists()


def test_cli_up_survives_its_process_and_down_removes_it(lab_prefix: Callable[[], str]) -> None:
    prefix = lab_prefix()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = [sys.executable, "-m", "lab"]
    workdir = Path("/nonexistent")
    try:
        up = subprocess.run(run + ["up", "--prefix", prefix], env=env, check=False, capture_output=True, text=True,
                            timeout=60)
        assert up.returncode == 0, up.stderr
        workdir = Path(up.stdout.split(" dir ")[1].split()[0])
        net = up.stdout.split("net 10.99.")[1].split(".")[0]
        ping = subprocess.run(["ip", "netns", "exec", f"{prefix}-client", "ping", "-c", "1", "-W", "1",
                               f"10.99.{net}.2"], check=False, capture_output=True)
        assert ping.returncode == 0
    finally:
        down = subprocess.run(run + ["down", "--prefix", prefix], env=env, check=False, capture_output=True, text=True,
                              timeout=60)
    assert down.returncode == 0, down.stderr
    assert _leftovers(prefix, workdir) == []


def _running(command: str, proc: subprocess.Popen) -> bool:
    """True once `proc` has exec'd `command` (every unshare/setns before it is done)."""
    try:
        return Path(f"/proc/{proc.pid}/comm").read_text().strip() == command
    except OSError:
        return False


def test_teardown_never_matches_a_fresh_namespace_that_reuses_a_dead_anchors_number(
        lab_prefix: Callable[[], str]) -> None:
    """A parallel lab's new process must never be taken for one of ours (a CI run lost a probe so).

    The kernel hands a dead namespace's inode number to the next namespace made, and `ip netns exec`
    makes a mount namespace per command; the teardown holds what it matches on open, so the number
    cannot be handed on while it kills.
    """
    ns = f"{lab_prefix()}-t"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    fresh: list[subprocess.Popen] = []
    anchor = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--mount", "sleep", "60"])
    try:
        wait_until(lambda: _running("sleep", anchor), timeout=5, what="the anchor in its own mount namespace")
        record = registry.LabRecord(prefix=ns, net=0, namespaces=[ns], owner_pid=None, anchor_pids=[anchor.pid])
        with registry._lab_namespaces(record) as matched:
            dead = registry._ns_id(f"/proc/{anchor.pid}/ns/mnt")
            assert dead in matched
            stop_proc(anchor)
            # The kernel gives out the lowest free number: make namespaces until one gets a number
            # above the dead one's, so that number was handed out if it was free.
            while len(fresh) < 3000:
                fresh.append(subprocess.Popen(["unshare", "--mount", "sleep", "60"]))
                wait_until(lambda: _running("sleep", fresh[-1]), timeout=5, what="a fresh mount namespace")
                if registry._ns_id(f"/proc/{fresh[-1].pid}/ns/mnt") >= dead:
                    break
            assert registry._lab_processes(matched) == set()
    finally:
        for proc in [anchor, *fresh]:
            stop_proc(proc)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_probe_result_gaps_and_holders_from_samples() -> None:
    result = ProbeResult([(0.0, "server1"), (0.1, "server1"), (0.2, None), (0.3, None), (0.4, "server2"),
                          (0.5, "server2"), (0.6, None), (0.7, "server1")])
    assert result.holders() == ["server1", "server2", "server1"]
    assert result.gaps() == [(0.1, 0.4), (0.5, 0.7)]
    assert result.longest_gap() == pytest.approx(0.3)
    assert result.holder_at(0.25) is None and result.holder_at(0.45) == "server2"
    assert result.first_answer_from("server1", after=0.2) == 0.7
    assert ProbeResult([(0.0, None), (0.1, "server1"), (0.2, None)]).gaps() == []


def test_machine_wide_killers_and_reboot_are_refused_inside_hosts(lab: Lab) -> None:
    s1 = lab.hosts["server1"]
    sleeper = lab.hosts["server2"].spawn(["sleep", "60"])
    for cmd in ("pkill -9 sleep", "killall -9 sleep", "systemctl --version"):
        res = s1.run(cmd, check=False)
        assert res.returncode == 1 and "refused inside a lab host" in res.stderr, cmd
    assert "refused inside a lab host" in s1.run(["cat", "/sbin/reboot"]).stdout  # never run for real
    assert sleeper.poll() is None
    cap_bnd = int(s1.run("grep CapBnd /proc/self/status").stdout.split()[1], 16)
    assert not cap_bnd & (1 << 22)  # CAP_SYS_BOOT
    assert Path("/usr/bin/pkill").is_symlink()  # the machine's own tools are untouched


ECHO_RTTS = """
import socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(1.0)
target, count = (sys.argv[1], int(sys.argv[2])), int(sys.argv[3])
deadline = time.monotonic() + 5
while True:                                     # the responder may still be starting
    sock.sendto(b"hello", target)
    try:
        sock.recvfrom(512)
        break
    except socket.timeout:
        assert time.monotonic() < deadline, "no echo"
for i in range(count):
    t = time.monotonic()
    sock.sendto(str(i).encode(), target)
    data, _peer = sock.recvfrom(512)
    assert data.split()[0] == str(i).encode(), data
    print(f"{(time.monotonic() - t) * 1000:.2f}")
    time.sleep(0.02)
"""


def _echo_rtts_ms(lab: Lab, port: int, count: int) -> list[float]:
    """Round trips server1 -> server2:port -> server1; only the request leg goes to `port`."""
    s1 = lab.hosts["server1"]
    out = s1.run([sys.executable, "-c", ECHO_RTTS, lab.hosts["server2"].address, str(port), str(count)], timeout=60)
    return [float(x) for x in out.stdout.split()]


def test_jitter_delays_udp_to_one_port_uniformly_and_only_once(lab: Lab) -> None:
    """50 ms jitter on UDP 694 between the servers: echo round trips spread over ~0-50 ms, each request
    re-sent exactly once (no loop through the bridge), other ports untouched; stop() restores the bridge."""
    s2 = lab.hosts["server2"]
    responders = [s2.spawn(agent_cmd("respond", port, "server2")) for port in (694, 5405)]
    try:
        baseline = _echo_rtts_ms(lab, 694, 20)
        jitter = start_jitter(lab, "server1", "server2", max_ms=50, seed=7)
        try:
            rtts = _echo_rtts_ms(lab, 694, 100)
            other = _echo_rtts_ms(lab, 5405, 20)
            held = jitter.delays_ms()
        finally:
            jitter.stop()
        after = _echo_rtts_ms(lab, 694, 20)
    finally:
        for proc in responders:
            stop_proc(proc)
    rtts.sort()
    print(f"jitter RTT ms: min {rtts[0]:.1f} p10 {rtts[10]:.1f} median {rtts[50]:.1f} p90 {rtts[90]:.1f} "
          f"max {rtts[-1]:.1f}; baseline median {sorted(baseline)[10]:.1f}; held {len(held)} frames")
    assert len(held) == 101                     # the handshake datagram + 100 requests, each re-sent once
    # 50 ms of slack for scheduling: CI runs 4 workers' labs on 2 cores (load ~8), where a frame was held
    # ~90 ms once; the spread and the mean below keep the test about uniform 0-50 ms.
    assert all(0 <= d <= 50 + 50 for d in held), sorted(held)[-5:]
    assert rtts[10] < 15 and rtts[90] > 35, rtts  # spread over the range, not a constant delay
    assert 15 < sum(rtts) / len(rtts) < 40, rtts   # uniform on [0, 50]: mean 25
    assert sorted(other)[10] < 10 and sorted(after)[10] < 10, (other, after)
