"""The fault suite's vocabulary: faults injected with nft/signals/taskset/libfaketime into a `pair.Pair`,
and the checks every fault ends with (one holder, the client reaches it, scripts in order, config
untouched, no secret).

Kept apart from the test files so the fast subset (test_faults.py), the ping tests and the soak
(test_soak_faults.py) share one definition of "the pair survived".
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab import Lab
from lab.node import Host
from pair import FAST, HOSTS, SECRET, Agent, Pair, Timers, calls, peer_of, wait_until

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
NFT_TABLE = "hbfault"
UDP_PORT = 694


def matrix(fault: str, holders_during: int, settle_s: float | None, note: str = "") -> None:
    """One row of docs/reliability.md's fault matrix: printed, and appended to $HBVIP_FAULT_MATRIX."""
    settle = "-" if settle_s is None else f"{settle_s:.2f}"
    row = f"MATRIX | {fault} | {holders_during} | {settle} | {note}"
    print(row)
    path = os.environ.get("HBVIP_FAULT_MATRIX")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(row + "\n")


class WallClockAgent(Agent):
    """`hbvip run` under libfaketime: its CLOCK_REALTIME (time.time(), log stamps, the `ts` field) is
    shifted by the offset in FAKETIME_RC, which libfaketime re-reads on every call (FAKETIME_NO_CACHE),
    so `set_offset()` jumps the wall clock of the running agent. CLOCK_MONOTONIC stays real
    (FAKETIME_DONT_FAKE_MONOTONIC). This jumps one process's wall clock, never the machine's: `date -s`
    is not possible because CLOCK_REALTIME is not namespaced.

    libfaketime 0.9.10 with DONT_FAKE_MONOTONIC makes an absolute clock_nanosleep fail with EINVAL
    (Python's time.sleep); the agent's loop only waits in epoll, so it is not affected. Children (the
    resource scripts) inherit the preload: their `date` is shifted too.
    """

    FAKETIME_RC = "/run/hbvip-faketime.rc"

    def start(self) -> Agent:
        self.set_offset("+0")
        env = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": self.FAKETIME_RC,
               "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        spawn = self.host.spawn
        self.host.spawn = lambda cmd, **kw: spawn(cmd, **{**kw, "env": env})  # type: ignore[method-assign]
        try:
            return super().start()
        finally:
            del self.host.spawn

    def set_offset(self, offset: str) -> None:
        """e.g. "+1h", "-1h", "+0"; written atomically, so the agent never reads a half-written file."""
        tmp = self.host.write(self.FAKETIME_RC + ".new", offset + "\n")
        tmp.replace(self.host.path(self.FAKETIME_RC))


def heartbeat_ts(receiver: Host, sender: Host, timeout: float = 3.0) -> int:
    """The `ts` field (sender's wall clock, seconds) of the next heartbeat `receiver` gets from `sender`."""
    r = receiver.run(["timeout", str(timeout), "tcpdump", "-i", receiver.iface, "-nn", "-l", "-A", "-c", "1",
                      f"udp dst port {UDP_PORT} and src host {sender.address}"], check=False)
    found = re.search(r"\bts=([0-9a-fA-F]+)", r.stdout)
    if not found:
        raise AssertionError(f"no heartbeat from {sender.name} seen on {receiver.name}: {r.stdout[-500:]} {r.stderr}")
    return int(found.group(1), 16)


# ---- faults -------------------------------------------------------------------------------------------

def nft(host: Host, *rules: str) -> None:
    """Add `rules` (nft syntax after `add rule inet hbfault <chain>`) to the host's own fault table."""
    host.run(["nft", f"add table inet {NFT_TABLE}"])
    for chain in ("input", "output"):
        host.run(["nft", f"add chain inet {NFT_TABLE} {chain} {{ type filter hook {chain} priority 0 ; }}"])
    for rule in rules:
        host.run(["nft", f"add rule inet {NFT_TABLE} {rule}"])


def heal(*hosts: Host) -> None:
    for host in hosts:
        host.run(["nft", f"delete table inet {NFT_TABLE}"], check=False)


def deafen(host: Host, to: Host) -> None:
    """`host` no longer hears heartbeats from `to` (one direction of a partition)."""
    nft(host, f"input ip saddr {to.address} udp dport {UDP_PORT} drop")


def lossy(host: Host, percent: int) -> None:
    """Drop `percent` % of heartbeats arriving at `host` (tc netem is not available in this kernel), counted."""
    nft(host, f"input udp dport {UDP_PORT} numgen random mod 100 < {percent} counter drop")


def dropped(host: Host) -> int:
    """Heartbeats the fault rules (`lossy`) dropped so far on `host`."""
    out = host.run(["nft", "list", "table", "inet", NFT_TABLE], check=False).stdout
    return sum(int(w) for w in re.findall(r"counter packets (\d+)", out))


@contextmanager
def busy_loops(host: Host, pid: int, count: int, cpu: int = 0) -> Iterator[None]:
    """Pin the agent (all its threads) to `cpu` and run `count` busy loops pinned beside it."""
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True, capture_output=True)
    hogs = [host.spawn(["taskset", "-c", str(cpu), "sh", "-c", "while :; do :; done"]) for _unused in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            host.kill(hog, signal.SIGKILL)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the checks every fault ends with -----------------------------------------------------------------

def script_order_problems(lab: Lab, *, overlap_allowed: bool = False,
                          crashes: list[tuple[float, str]] = ()) -> list[str]:
    """failback.sh calls must follow Heartbeat's order: status before start, and (unless split brain was the
    fault) no host starts while the other has started and not stopped. `crashes` are (wall time, host) of
    SIGKILLs and power losses: a dead host runs nothing any more, though nobody called its stop."""
    problems: list[str] = []
    running: dict[str, bool] = {h: False for h in HOSTS}
    last: dict[str, str | None] = {h: None for h in HOSTS}
    pending = sorted(crashes)
    for t, host, action in calls(lab):
        while pending and pending[0][0] <= t:
            running[pending.pop(0)[1]] = False
        if action == "start":
            if last[host] != "status":
                problems.append(f"{host}: start without status before it")
            other = peer_of(host)
            if running[other] and not overlap_allowed:
                problems.append(f"{host}: start while {other} still ran the resource")
            running[host] = True
        elif action == "stop":
            running[host] = False
        last[host] = action
    return problems


def config_snapshot(lab: Lab) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, host in lab.hosts.items():
        base = host.path("/etc/ha.d")
        for p in sorted(base.rglob("*")):
            if p.is_file():
                out[f"{name}:{p.relative_to(base)}"] = p.read_bytes()
    return out


def secret_leaks(lab: Lab, extra_outputs: list[str]) -> list[str]:
    """Every file the hosts wrote (logs, state, runtime) and every captured CLI output, searched for the key."""
    found = []
    for name, host in lab.hosts.items():
        for p in host.root.rglob("*"):
            if p.is_file() and not p.name == "authkeys":
                try:
                    if SECRET.encode() in p.read_bytes():
                        found.append(f"{name}:{p.relative_to(host.root)}")
                except OSError:
                    pass
    found += [f"cli output #{i}" for i, text in enumerate(extra_outputs) if SECRET in text]
    return found


@contextmanager
def running_pair(lab: Lab, timers: Timers = FAST, *, start: bool = True, extensions: str | None = None,
                 overlap_allowed: bool = False) -> Iterator[Pair]:
    """Install the seed's files, start both agents with server1 serving, and check the invariants at the end."""
    pair = Pair(lab).install(timers)
    if extensions is not None:
        for host in lab.hosts.values():
            host.write("/etc/ha.d/hbvip.cf", extensions)
    agents = pair.agents = {h: Agent(lab.hosts[h]) for h in HOSTS}
    pair.config_before = config_snapshot(lab)
    try:
        if start:
            for a in agents.values():
                a.start()
            wait_until(lambda: pair.holders() == {"server1"}, 10, "server1 to serve the VIP")
            pair.stable()
        pair.watch.start()
        yield pair
        outputs = [a.cli("status", "--json", check=False).stdout for a in agents.values()
                   if a.proc and a.proc.poll() is None]
        outputs += [a.out.read_text() for a in agents.values() if a.out.exists()]
        order = script_order_problems(lab, overlap_allowed=overlap_allowed, crashes=pair.crashes)
        assert not order, order
        assert config_snapshot(lab) == pair.config_before, "the agent changed a file in /etc/ha.d"
        assert not secret_leaks(lab, outputs), secret_leaks(lab, outputs)
    finally:
        pair.close()
        heal(*lab.hosts.values())
