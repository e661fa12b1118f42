"""Debian's keepalived: one VRRP instance, unicast between the two hosts, VRRPv3 for sub-second adverts.

Priorities 150 (server1, the home node) and 100 (server2), preemption on: the same behaviour as
Heartbeat's `auto_failback on`. A planned switchover lowers server1's priority to 50 and reloads.
"""
from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence

from lab import Lab
from lab.node import Host

from bench.contenders.base import Contender, procs_named
from bench.service import ServiceCheck
from bench.timers import TimerSet

CONF = "/etc/keepalived/bench.conf"
PIDFILE, VRRP_PIDFILE = "/run/keepalived.pid", "/run/keepalived_vrrp.pid"
PRIORITY = {"server1": 150, "server2": 100}
STANDBY_PRIORITY = 50


class Keepalived(Contender):
    name = "keepalived"
    log_file = "/var/log/keepalived-bench.log"
    _timers: TimerSet
    _vips: Sequence[str] = ()
    _check: ServiceCheck | None = None

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self._procs: dict[str, subprocess.Popen] = {}

    def supports(self, timers: TimerSet) -> bool:
        return timers.keepalived

    def install(self, timers: TimerSet, vips: Sequence[str]) -> None:
        self._timers, self._vips, self._check = timers, tuple(vips), None
        for host in self.lab.hosts.values():
            host.write(CONF, self._conf(host, PRIORITY[host.name]))

    def checks_services(self) -> bool:
        return True

    def install_check(self, check: ServiceCheck) -> None:
        self._check = check
        for host in self.lab.hosts.values():
            host.write(CONF, self._conf(host, PRIORITY[host.name]))

    def _script(self) -> tuple[str, str, str]:
        """(global_defs lines, vrrp_script block, track_script block); weight 0: a failing script puts
        the instance in FAULT, which gives the VIP up, as hbvip's check makes a node ineligible."""
        c = self._check
        if c is None:
            return "", "", ""
        return ("  enable_script_security\n  script_user root\n",
                f"vrrp_script {c.name} {{\n  script \"{c.script}\"\n  interval {c.interval_s}\n"
                f"  timeout {c.timeout_s}\n  fall {c.fall}\n  rise {c.rise}\n}}\n",
                f"  track_script {{\n    {c.name}\n  }}\n")

    def _conf(self, me: Host, priority: int) -> str:
        peers = "\n".join(f"    {h.address}" for h in self.lab.hosts.values() if h is not me)
        vips = "\n".join(f"    {v}/24 dev eth0" for v in self._vips)
        fractional = self._timers.keepalive_ms % 1000 != 0
        security, script, track = self._script()
        return f"""global_defs {{
  router_id {me.name}
{"  vrrp_version 3" if fractional else ""}
{security}}}
{script}vrrp_instance bench {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {priority}
  advert_int {self._timers.keepalive_s:g}
  unicast_src_ip {me.address}
  unicast_peer {{
{peers}
  }}
  virtual_ipaddress {{
{vips}
  }}
{track}}}
"""

    def start(self, host: Host) -> None:
        log = host.path(self.log_file)
        with open(log, "ab") as out:
            cmd = ["keepalived", "-n", "-l", "-D", "-P", "-f", CONF, "-p", PIDFILE, "-r", VRRP_PIDFILE]
            self._procs[host.name] = host.spawn(cmd, stdout=out, stderr=out)

    def pids(self, host: Host) -> list[int]:
        return procs_named(host, "keepalived")

    def _reload(self, host: Host, priority: int) -> None:
        host.write(CONF, self._conf(host, priority))
        parent = int(host.read(PIDFILE).strip())
        host.kill(parent, signal.SIGHUP)

    def standby(self, host: Host) -> None:
        self._reload(host, STANDBY_PRIORITY)

    def unstandby(self, host: Host) -> None:
        self._reload(host, PRIORITY[host.name])

    def kill9(self, host: Host) -> None:
        super().kill9(host)
        proc = self._procs.pop(host.name, None)
        if proc is not None:
            proc.wait(5)        # reap the parent we spawned (its children were reparented away)
        # The orphaned VRRP child stays a zombie here (no init of our own reaps it), and keepalived
        # refuses to start while its pidfile names a zombie ("daemon is already running"). On a real
        # machine init reaps at once, so the pidfiles would name dead pids: remove them as such.
        for pidfile in (PIDFILE, VRRP_PIDFILE):
            host.path(pidfile).unlink(missing_ok=True)
