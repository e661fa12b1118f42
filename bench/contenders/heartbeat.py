"""Debian's Heartbeat 3.0.6, started the way its init script would, inside the lab host.

It daemonizes and forks helpers (read/write children, ResourceManager, IPaddr scripts); all of them
are called `heartbeat` or are its short-lived children, so the pids are found by name in the host.
The host's /usr/bin already refuses pkill/killall/systemctl (what a failed stop would run).
"""
from __future__ import annotations

from collections.abc import Sequence

from lab.node import Host

from bench.contenders.base import Contender, procs_named, with_descendants
from bench.contenders.heartbeat_files import install_ha_d
from bench.timers import TimerSet

HB_SHARE = "/usr/share/heartbeat"


class Heartbeat(Contender):
    name = "heartbeat"

    def supports(self, timers: TimerSet) -> bool:
        return timers.heartbeat

    def install(self, timers: TimerSet, vips: Sequence[str]) -> None:
        install_ha_d(self.lab, timers, vips)

    def start(self, host: Host) -> None:
        # Debian's init script, as an operator would: it checks every resource is idle, makes the
        # run dirs a reboot wiped (/run/heartbeat, /run/resource-agents), then starts the daemon.
        host.run(["/etc/init.d/heartbeat", "start"], timeout=30)

    def pids(self, host: Host) -> list[int]:
        return with_descendants(host, procs_named(host, "heartbeat"))

    def standby(self, host: Host) -> None:
        host.run([f"{HB_SHARE}/hb_standby"], timeout=30)

    def unstandby(self, host: Host) -> None:
        host.run([f"{HB_SHARE}/hb_takeover"], timeout=30)
