"""hbvip: `hbvip run` on each host, steered by its own CLI."""
from __future__ import annotations

from collections.abc import Sequence

from lab import Lab
from lab.node import Host

from bench.contenders.base import Contender
from bench.contenders.heartbeat_files import install_ha_d, pair
from bench.timers import TimerSet


class Hbvip(Contender):
    name = "hbvip"

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self.agents = {name: pair.Agent(host) for name, host in lab.hosts.items()}

    def install(self, timers: TimerSet, vips: Sequence[str]) -> None:
        install_ha_d(self.lab, timers, vips)

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
