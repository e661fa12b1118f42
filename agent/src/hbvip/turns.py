"""When the agent's next turn runs: one timer callback at the earliest deadline, or at once on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Wake:
    """Runs the agent's turn as a plain timer callback: at the time the last turn asked for, or as soon
    as the loop is free after `set()` (coalesced). A keepalive turn is then one timer handle, with no
    task, future or timeout object made per turn: an idle agent's CPU cost is mostly its wake-ups."""

    def __init__(self, turn: Callable[[], float | None]) -> None:
        self._turn = turn
        self._timer: asyncio.TimerHandle | None = None
        self._soon: asyncio.Handle | None = None
        #: The loop of the last `set()`: every timer comes after one. Kept rather than asked for per turn,
        #: because `asyncio.get_running_loop()` costs a getpid() system call each time.
        self._loop: asyncio.AbstractEventLoop | None = None
        #: When the next turn runs by itself (monotonic; -inf while none is armed: before the loop
        #: starts and after it ended there is nobody to wake early).
        self.at = float("-inf")

    @property
    def armed(self) -> bool:
        """A turn is scheduled: the loop runs (before it starts and after it ended nothing is)."""
        return self.at != float("-inf")

    def set(self) -> None:
        if self._soon is None:
            self._loop = asyncio.get_running_loop()
            self._soon = self._loop.call_soon(self._run)

    def reschedule(self, when: float) -> None:
        """Move the next turn to `when` (a deadline changed outside a turn). Nothing to do while no turn
        is armed or one is about to run anyway: that turn computes its own deadline."""
        if self._timer is None or self._soon is not None or when == self.at:
            return
        self._timer.cancel()
        self.at = when
        assert self._loop is not None
        self._timer = self._loop.call_at(when, self._run)

    def cancel(self) -> None:
        for handle in (self._timer, self._soon):
            if handle is not None:
                handle.cancel()
        self._timer = self._soon = None
        self.at = float("-inf")

    def _run(self) -> None:
        self.cancel()
        when = self._turn()
        if when is not None:
            self.at = when
            # The loop's clock is time.monotonic() (the agent's Clock), so the deadline is used as it is.
            assert self._loop is not None
            self._timer = self._loop.call_at(when, self._run)


class TaskSet:
    """The agent's background tasks (resource work, probes, diagnoses): kept referenced until done, so
    the loop does not collect them half-way, and cancelled together at exit."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: object) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
