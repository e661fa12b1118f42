"""Rate limit for the log lines that dropped datagrams cause.

Heartbeat logs "attempted replay attack" and "Received packet from unknown node" once per datagram, so a
restored VM or a hostile sender on UDP 694 floods the log (and the disk) as fast as it can send. The drop
counters already count every datagram; the log only has to say that it is happening. So each drop reason
may log `burst` lines per `window` seconds; past that its lines are swallowed and counted, and the first
line of the next window says how many were left out.
"""

from __future__ import annotations

from .cluster import Action, Log
from .records import dataclass, field


@dataclass
class DropLogLimiter:
    """Logs the first `burst` drops of a reason per `window` seconds, then counts them silently."""
    burst: int = 5
    window: float = 10.0
    _opened: dict[str, float] = field(default_factory=dict)
    _logged: dict[str, int] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)

    def filter(self, reason: str, actions: list[Action], now: float) -> list[Action]:
        """The actions of one dropped datagram, with its log lines kept or swallowed by the limit."""
        if now - self._opened.get(reason, float("-inf")) >= self.window:
            out = self._summary(reason)
            self._opened[reason], self._logged[reason] = now, 0
        else:
            out = []
        for action in actions:
            if not isinstance(action, Log):
                out.append(action)
            elif self._logged[reason] < self.burst:
                self._logged[reason] += 1
                out.append(action)
            elif action.level != "debug":
                # A debug line left out is not worth a warning: redundant heartbeat paths deliver every
                # datagram twice, and the second copy's `packet.duplicate` is the normal case.
                self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
        return out

    def _summary(self, reason: str) -> list[Action]:
        n = self._suppressed.pop(reason, 0)
        if not n:
            return []
        return [Log("warning", "packet.log_suppressed",
                    f"{n} more dropped packet(s) [{reason}] not logged; see `hbvip status` counters",
                    {"reason": reason, "suppressed": n, "window_s": self.window})]
