"""How the demo shows what happens: a live rich view on a terminal, plain timestamped lines elsewhere.

Both take the same calls, so the scenario never knows which one it talks to; the plain one is what the
test reads and what a CI log keeps.
"""
from __future__ import annotations

import sys
import time
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


class Timeline(Protocol):
    def event(self, text: str, style: str = "") -> None:
        """Something happened: it goes on the record with the time since the demo started."""

    def status(self, text: str) -> None:
        """The current state (who holds the VIP, probe counts): shown live, never logged."""

    def close(self) -> None: ...


class PlainTimeline:
    """One line per event, `[  12.3s] text`. Statuses change many times a second, so only one every
    STATUS_EVERY_S is printed (indented): enough to show a long site.yml run is moving."""

    STATUS_EVERY_S = 20.0

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._last_status = self._start

    def event(self, text: str, style: str = "") -> None:
        print(f"[{time.monotonic() - self._start:6.1f}s] {text}", flush=True)
        self._last_status = time.monotonic()

    def status(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_status >= self.STATUS_EVERY_S:
            print(f"[{now - self._start:6.1f}s]   ... {text}", flush=True)
            self._last_status = now

    def close(self) -> None:
        pass


class RichTimeline:
    """A table of events that grows, under it one status line that is redrawn ~8 times a second."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._events: list[tuple[float, str, str]] = []
        self._status = ""
        self._console = Console()
        self._live = Live(self._render(), console=self._console, refresh_per_second=8, transient=False)
        self._live.start()

    def _render(self) -> Group:
        table = Table(title="hbvip demo", show_edge=False)
        table.add_column("time", justify="right", width=8, style="dim")
        table.add_column("event")
        for at, text, style in self._events:
            table.add_row(f"{at:.1f}s", Text(text, style=style))
        return Group(table, Text(self._status, style="bold cyan"))

    def event(self, text: str, style: str = "") -> None:
        self._events.append((time.monotonic() - self._start, text, style))
        self._live.update(self._render())

    def status(self, text: str) -> None:
        self._status = text
        self._live.update(self._render())

    def close(self) -> None:
        self._status = ""
        self._live.update(self._render())
        self._live.stop()


def make(plain: bool) -> Timeline:
    return PlainTimeline() if plain or not sys.stdout.isatty() else RichTimeline()
