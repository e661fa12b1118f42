"""Problems found in configuration files, and the error that carries all of them.

Operators fix configs in an editor, so every problem names the file and line and says how to
fix it; and they fix them in one pass, so parsers collect every problem instead of stopping at
the first.
"""

from __future__ import annotations

from collections.abc import Iterable

from hbvip.records import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or doubtful, when severity is "warning") at one place in one file."""

    path: str
    line: int | None
    message: str
    fix: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        kind = "warning: " if self.severity == WARNING else ""
        text = f"{where}: {kind}{self.message}"
        return f"{text} — {self.fix}" if self.fix else text

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that forbid starting (warnings are only reported)."""
    return [p for p in problems if p.is_error]


def format_problems(problems: Iterable[Problem]) -> str:
    """One problem per line, as `hbvip check-config` prints them."""
    return "\n".join(str(p) for p in problems)


class ConfigError(Exception):
    """Raised when the configuration cannot be used; carries every problem found, not just one."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(format_problems(self.problems))

    def __str__(self) -> str:
        return format_problems(self.problems)
