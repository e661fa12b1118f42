"""The three contenders behind one interface, so a trial is written once for all of them."""
from __future__ import annotations

from bench.contenders.base import Contender
from bench.contenders.heartbeat import Heartbeat
from bench.contenders.hbvip import Hbvip
from bench.contenders.keepalived import Keepalived

ALL: tuple[type[Contender], ...] = (Hbvip, Heartbeat, Keepalived)

__all__ = ["ALL", "Contender", "Hbvip", "Heartbeat", "Keepalived"]
