"""The fault suite's long runs (`make soak` only): repeated failover cycles, sustained loss, and an agent
whose monotonic clock is an hour away from its peer's.

Wall-clock jumps: CLOCK_REALTIME is not namespaced in Linux, so `date -s` in a lab host would move the
real machine's clock; it is never done here. The agent takes every timing decision on CLOCK_MONOTONIC
(the cluster machines get `now` injected; wall time only fills Heartbeat's informational `ts` field and
`last_takeover.at`), so what can differ between two nodes is their monotonic base — which a time
namespace can shift, and does below.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from faults import heal, lossy, running_pair
from pair import FAST, Agent, calls, holds_for, wait_until

pytestmark = [pytest.mark.soak, pytest.mark.timeout(1800)]
HOUR = 3600


class ShiftedClockAgent(Agent):
    """`hbvip run` in its own time namespace: CLOCK_MONOTONIC and CLOCK_BOOTTIME one hour ahead."""

    def start(self) -> Agent:
        spawn = self.host.spawn
        self.host.spawn = lambda cmd, **kw: spawn(   # type: ignore[method-assign]
            ["unshare", "--time", "--monotonic", str(HOUR), "--boottime", str(HOUR), "--fork",
             "--kill-child=SIGKILL", *cmd], **kw)
        try:
            return super().start()
        finally:
            del self.host.spawn

    @property
    def agent_pid(self) -> int:
        """The agent itself (the child of `unshare --fork`)."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return int(children[0])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.host.kill(self.agent_pid, signal.SIGTERM)
            self.proc.wait(15)


def test_power_loss_cycles_always_end_with_one_holder(lab):
    """20 rounds of power loss of the holder and return: every round settles on one holder in time."""
    with running_pair(lab) as p:
        worst = 0.0
        for _unused in range(20):
            t0 = time.monotonic()
            p.crash("server1", power=True)
            worst = max(worst, p.settle("server2", t0, timeout=p.deadline))
            p.host("server1").power_on()
            p.agents["server1"].start()
            p.settle("server1", time.monotonic(), timeout=3 * FAST.deadtime_s + 5)
            p.stable()
        assert worst <= p.deadline, f"worst takeover {worst:.2f} s"
        print(f"MATRIX | 20 x power loss + return | 1 | {worst:.2f} (worst) |")


def test_sustained_twenty_percent_loss_for_two_minutes(lab):
    with running_pair(lab) as p:
        t0 = time.monotonic()
        lossy(p.host("server1"), 20)
        lossy(p.host("server2"), 20)
        # A false death may make server2 take the VIP too, but server1 (its home) never lets go of it:
        # the client is served by server1 all along.
        holds_for(lambda: "server1" in p.holders(), 120, "server1 serving under 20 % loss", interval=0.5)
        heal(p.host("server1"), p.host("server2"))
        settle = p.settle("server1", time.monotonic(), timeout=p.deadline)
        deaths = p.agents["server2"].ha_log().count("node server1: is dead")
        print(f"MATRIX | 20 % loss, 120 s | {p.watch.max_holders(t0)} | {settle:.2f} | false deaths {deaths}")
        assert all("server1" in held for t, held in p.watch.samples if t >= t0), "server1 lost the VIP"
        assert settle <= p.deadline


def test_peer_with_a_monotonic_clock_an_hour_ahead_fails_over_and_back(lab):
    with running_pair(lab, start=False) as p:
        p.agents["server2"] = ShiftedClockAgent(p.host("server2"))
        p.agents["server1"].start()
        p.agents["server2"].start()
        p.settle("server1", time.monotonic(), timeout=3 * FAST.deadtime_s + 5)
        p.stable()
        t0 = time.monotonic()
        p.crash("server1", power=True)
        settle = p.settle("server2", t0, timeout=p.deadline)
        assert settle <= p.deadline
        p.host("server1").power_on()
        p.agents["server1"].start()
        p.settle("server1", time.monotonic(), timeout=3 * FAST.deadtime_s + 5)
        assert [a for _unused, h, a in calls(lab) if h == "server2"] == ["status", "start", "stop"]
        wait_until(lambda: p.agents["server2"].status()["peer"]["state"] == "active", 5, "pair formed again")
        print(f"MATRIX | peer monotonic clock +1 h | 1 | {settle:.2f} |")
