"""A service for health checks on a lab pair (issue 18), shared by the health tests: a real process on
each host (python's http.server on the host's loopback, port 18080), killed as a crash and started again,
and the pair started with it up on both hosts and server1 serving the VIP."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from faults import config_snapshot, running_pair
from pair import Pair, wait_until

PORT = 18080


class Services:
    """The service on each host: started, killed (SIGKILL, as a crash) and started again by PID."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        host = self.pair.host(name)
        self.procs[name] = host.spawn([sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1",
                                       "--directory", "/etc/ha.d"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: host.run(["curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{PORT}/"],
                                    check=False).returncode == 0, 5, f"the service on {name}")

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        self.pair.host(name).kill(proc, signal.SIGKILL)
        proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)


def eligibility(pair: Pair, name: str) -> dict:
    g = pair.agents[name].status()["groups"][0]
    return {k: g[k] for k in ("eligible", "peer_eligible", "degraded")}


@contextmanager
def healthy_pair(lab, extensions: str, **kw) -> Iterator[tuple[Pair, Services]]:
    """The seed's pair with `extensions` as hbvip.cf and the service up on both hosts, server1 serving."""
    with running_pair(lab, start=False, extensions=extensions, **kw) as p:
        services = Services(p)
        try:
            for name in ("server1", "server2"):
                services.start(name)
            p.config_before = config_snapshot(lab)
            for a in p.agents.values():
                a.start()
            wait_until(lambda: p.holders() == {"server1"}, 10, "server1 to serve the VIP")
            p.stable()
            p.probe.wait_for("server1")      # the client probes from before the fault on
            yield p, services
        finally:
            services.stop_all()
