"""hbvip: `hbvip run` on each host, steered by its own CLI."""
from __future__ import annotations

from collections.abc import Sequence

from lab import Lab
from lab.node import Host

from bench.contenders.base import Contender
from bench.contenders.heartbeat_files import install_ha_d, pair
from bench.service import ServiceCheck
from bench.timers import TimerSet


class Hbvip(Contender):
    name = "hbvip"

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self.agents = {name: pair.Agent(host) for name, host in lab.hosts.items()}

    def install(self, timers: TimerSet, vips: Sequence[str]) -> None:
        install_ha_d(self.lab, timers, vips)
        for host in self.lab.hosts.values():
            host.path("/etc/ha.d/hbvip.cf").unlink(missing_ok=True)   # a check is the scenario's, not every trial's

    def checks_services(self) -> bool:
        return True

    def install_check(self, check: ServiceCheck) -> None:
        line = (f'check {check.name} command "{check.script}" interval {check.interval_s} timeout {check.timeout_s}'
                f" fall {check.fall} rise {check.rise}\n")
        for host in self.lab.hosts.values():
            host.write("/etc/ha.d/hbvip.cf", line)

    def start(self, host: Host) -> None:
        self.agents[host.name].start()

    def pids(self, host: Host) -> list[int]:
        proc = self.agents[host.name].proc
        return [proc.pid] if proc is not None and proc.poll() is None else []

    def kill9(self, host: Host) -> None:
        agent = self.agents[host.name]
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()

    def standby(self, host: Host) -> None:
        self.agents[host.name].cli("standby", "--timeout", "20")

    def unstandby(self, host: Host) -> None:
        self.agents[host.name].cli("takeover", "--timeout", "20")
