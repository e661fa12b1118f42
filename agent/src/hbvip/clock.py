"""Where time enters the agent: the monotonic clock for every deadline and the wall clock for the
wire's `ts` and the `last_takeover` stamp.

The parts of the agent take a `Clock` instead of calling `time.*` themselves, so a unit test can run
them on a fake clock; the composition root passes the system's. The monotonic clock must be the one the
asyncio loop schedules by (`time.monotonic`), because turns are armed with `loop.call_at`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .records import dataclass


@dataclass(frozen=True)
class Clock:
    """Where the agent reads the time: monotonic for every decision, wall only for display."""
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time


#: The real clocks, for the composition root and for parts run outside a test.
SYSTEM_CLOCK = Clock()
