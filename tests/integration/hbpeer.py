"""Run Debian's real `heartbeat` 3.0.6 on a lab host: the other half of a mixed pair.

Heartbeat is not built for namespaces, so each host that runs it gets what it needs here, not in the lab:
a refusing stub bind-mounted over every tool that acts on the whole machine (its ResourceManager runs
`pkill -9 heartbeat` and `/sbin/reboot -nf` when a stop fails, and there is no PID namespace), its run
directories in the host's private /run, `ulimit -l unlimited` (it locks itself into memory) and
`use_logd no` (no logging daemon: it writes ha-log itself).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from lab import Lab
from lab.node import Host
from pair import FAILBACK_SH, SECRET, SEED_MEDIA, Agent, Pair, Timers, ha_cf, wait_until

HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"
HB_STANDBY = "/usr/share/heartbeat/hb_standby"
HB_TAKEOVER = "/usr/share/heartbeat/hb_takeover"
#: Everything that could reach beyond the host: killers by name and power switches.
GUARDED = ("pkill", "killall", "killall5", "systemctl", "halt", "shutdown", "reboot", "poweroff")
_STUB = '#!/bin/sh\necho "hbpeer: $0 $* refused inside a lab host" >&2\nexit 1\n'
#: Lines in ha-log that mean the pair is not healthy (issue 5, check 1).
BAD_LOG_LINES = ("authentication failed", "replay", "lost packet")
#: ERROR lines that come from the machine, not from the pair: no CAP_SYS_RESOURCE for `ulimit -l`, and
#: send_arp's libnet occasionally failing one frame in a namespace.
KNOWN_ERRORS = ("Cannot lock ourselves into memory", "libnet_write failed", "Could not send gratuitous arps")


def hb_ha_cf(timers: Timers, auto_failback: str = "on", media: str = SEED_MEDIA) -> str:
    """The seed's ha.cf plus `use_logd no`; the agent reads the same file."""
    return ha_cf(timers, auto_failback, media) + "use_logd no\n"


class HeartbeatPeer:
    """One real heartbeat on a lab host. Processes are found by network namespace, ended by PID."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._guarded = False

    # ---- safety ------------------------------------------------------------------------------
    def guard(self) -> None:
        """Bind-mount a refusing stub over every guarded tool, wherever PATH or a script may find it."""
        if self._guarded:
            return
        stub = self.host.write("/run/hbpeer-refuse", _STUB, mode=0o755)
        # Each real file once (reboot, halt, shutdown and poweroff all resolve to systemctl).
        names = " ".join(f"{d}/{tool}" for tool in GUARDED for d in ("/usr/bin", "/usr/sbin"))
        self.host.run(f"for p in {names}; do [ -e $p ] && readlink -f $p; done | sort -u |"
                      " while read t; do mount --bind /run/hbpeer-refuse $t; done")
        assert stub.exists()
        self._guarded = True

    def refused(self, tool: str) -> bool:
        res = self.host.run([tool, "--version"], check=False)
        return res.returncode != 0 and "refused" in (res.stderr + res.stdout)

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self, *, timeout: float = 10) -> HeartbeatPeer:
        self.guard()
        pidfile = self.host.path("/run/heartbeat.pid")
        if pidfile.exists():           # left by a SIGKILL: heartbeat would refuse to start
            pidfile.unlink()
        self.host.run("umask 027; mkdir -p /run/resource-agents /run/heartbeat/ccm /run/heartbeat/crm"
                      " /run/heartbeat/dopd /run/crm && chown -R hacluster:haclient /run/heartbeat /run/crm")
        # Raising the memlock limit needs CAP_SYS_RESOURCE; where it is missing heartbeat runs anyway and
        # logs "Cannot lock ourselves into memory" (see KNOWN_ERRORS).
        res = self.host.run(f"ulimit -l unlimited 2>/dev/null; exec {HEARTBEAT}", check=False, timeout=timeout)
        if res.returncode != 0:
            raise AssertionError(f"heartbeat on {self.host.name} failed: {res.stdout}{res.stderr}\n{self.ha_log()}")
        wait_until(lambda: self.cl_status("hbstatus").returncode == 0, timeout,
                   f"heartbeat on {self.host.name} to run")
        return self

    def pids(self) -> list[int]:
        """Heartbeat's processes in this host (master, FIFO, read/write children, resource children)."""
        out = subprocess.run(["ip", "netns", "pids", self.host.netns], check=False, capture_output=True, text=True).stdout
        found = []
        for pid in map(int, out.split()):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            comm, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
            if comm == "heartbeat" and state != "Z":     # a zombie has died, only its reaping is left
                found.append(pid)
        return found

    def running(self) -> bool:
        return bool(self.pids())

    def kill_all(self) -> None:
        """SIGKILL every Heartbeat process until none is left: a child the master forked a moment before
        its death (a resource run, still named `heartbeat`) is not in the first list."""
        def killed() -> bool:
            pids = self.pids()
            for pid in pids:
                try:
                    self.host.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            return not pids
        wait_until(killed, 5, f"heartbeat on {self.host.name} to die")

    def power_loss(self) -> None:
        """The machine dies: heartbeat SIGKILLed, link down, the VIP gone (as after a reboot)."""
        self.kill_all()
        self.host.power_loss()

    def stop(self, timeout: float = 30) -> None:
        """Graceful stop (what `heartbeat -k` / the init script do): SIGTERM to the master process."""
        master = self._master()
        if master is None:
            return
        self.host.kill(master, signal.SIGTERM)
        try:
            wait_until(lambda: not self.pids(), timeout, f"heartbeat on {self.host.name} to stop")
        except AssertionError:
            self.kill_all()
            raise

    def _master(self) -> int | None:
        p = self.host.path("/run/heartbeat.pid")
        try:
            pid = int(p.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid in self.pids() else None

    # ---- operator tools ------------------------------------------------------------------------
    def cl_status(self, *args: str) -> subprocess.CompletedProcess:
        return self.host.run(["cl_status", *args], check=False, timeout=10)

    def nodestatus(self, node: str) -> str:
        return self.cl_status("nodestatus", node).stdout.strip()

    def standby(self, which: str = "all") -> None:
        self.host.run([HB_STANDBY, which], timeout=10)

    def takeover(self, which: str = "all") -> None:
        self.host.run([HB_TAKEOVER, which], timeout=10)

    def ha_log(self) -> str:
        p = self.host.path("/var/log/ha-log")
        return p.read_text(errors="replace") if p.exists() else ""

    def bad_lines(self, agent_node: str, since: int = 0, *, explained: tuple[str, ...] = ()) -> list[str]:
        """Lines (from byte offset `since` of ha-log) that say the pair is not healthy. "lost packet" counts
        only about the agent's node: Heartbeat reorders its own child processes' messages (its FIFO) and
        then logs a gap about itself or another Heartbeat that closes a moment later. A line ending in one
        of `explained` is the caller's to account for."""
        def bad(line: str) -> bool:
            if "lost packet" in line:
                return f"for [{agent_node}]" in line
            if line.endswith(explained) and explained:
                return False
            return any(b in line for b in BAD_LOG_LINES) or self._unexplained_error(line)
        return [line for line in self.ha_log()[since:].splitlines() if bad(line)]

    def errors(self, since: int = 0) -> list[str]:
        return [line for line in self.ha_log()[since:].splitlines() if self._unexplained_error(line)]

    @staticmethod
    def _unexplained_error(line: str) -> bool:
        return ("ERROR:" in line or "CRIT:" in line) and not any(k in line for k in KNOWN_ERRORS)

    def log_size(self) -> int:
        return len(self.ha_log())


def install_mixed(lab: Lab, timers: Timers, *, auto_failback: str = "on", media: str = SEED_MEDIA,
                  haresources: str | None = None) -> None:
    """The seed's files on both hosts (identical), with `use_logd no` so Heartbeat logs to ha-log;
    `media` and `haresources` replace the seed's heartbeat lines and group line (IPv6, say)."""
    for name in ("server1", "server2"):
        h = lab.hosts[name]
        h.write("/etc/ha.d/ha.cf", hb_ha_cf(timers, auto_failback, media))
        h.write("/etc/ha.d/haresources", haresources or f"server1 IPaddr::{lab.vip}/24/eth0 failback.sh\n")
        h.write("/etc/ha.d/authkeys", f"auth 1\n1 sha1 {SECRET}\n", mode=0o600)
        h.write("/etc/ha.d/resource.d/failback.sh", FAILBACK_SH, mode=0o755)


def formed(hb: HeartbeatPeer, agent: Agent, agent_node: str) -> None:
    """Heartbeat and the agent see each other active and both are stable."""
    wait_until(lambda: hb.nodestatus(agent_node) == "active", 10, f"cl_status to show {agent_node} active")
    wait_until(lambda: agent.status()["peer"]["state"] == "active", 10, "hbvip to show heartbeat active")
    wait_until(lambda: agent.status()["stable"] and agent.status()["peer"]["stable"], 10, "both stable")


class MixedPair(Pair):
    """The pair harness with Debian's heartbeat on either host: `heartbeat(name)` starts it there, and
    `close()` also ends every heartbeat process this test started (by PID, found by namespace)."""

    def __init__(self, lab: Lab, timers: Timers) -> None:
        super().__init__(lab, timers)
        self.peers: list[HeartbeatPeer] = []

    def heartbeat(self, name: str) -> HeartbeatPeer:
        hb = HeartbeatPeer(self.lab.hosts[name]).start()
        self.peers.append(hb)
        return hb

    def close(self) -> None:
        super().close()
        for hb in self.peers:
            if hb.running():
                hb.kill_all()
