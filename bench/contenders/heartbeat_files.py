"""The seed's /etc/ha.d with a timer set: the same bytes for hbvip and Heartbeat (they share a format)."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from lab import Lab

from bench.contenders.base import haresources
from bench.timers import TimerSet, ms

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
import pair  # noqa: E402  (the integration tests' seed installer: one writer of the seed files)


def install_ha_d(lab: Lab, timers: TimerSet, vips: Sequence[str]) -> None:
    """`use_logd no` is what Debian's Heartbeat needs without a logd; hbvip reads and ignores it."""
    t = pair.Timers(ms(timers.keepalive_ms), ms(timers.warntime_ms), ms(timers.deadtime_ms),
                    ms(timers.initdead_ms))
    pair.install(lab, t)
    for host in lab.hosts.values():
        cf = host.path("/etc/ha.d/ha.cf")
        cf.write_text(cf.read_text() + "use_logd no\n")
        host.write("/etc/ha.d/haresources", haresources(vips))
