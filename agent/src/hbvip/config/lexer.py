"""Split Heartbeat-style config text into logical lines of whitespace-separated words.

ha.cf, haresources, authkeys and hbvip.cf share one shape — "word word ..." per line, `#`
comments, blank lines — but differ in details Heartbeat itself differs in: ha.cf drops
everything from any `#`; haresources only treats `#` as a comment where a word starts and
allows `\\` continuation lines; authkeys only skips whole-line comments, because a secret may
contain `#`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum


class Comments(Enum):
    ANYWHERE = "anywhere"      # ha.cf, hbvip.cf: '#' anywhere starts a comment
    WORD_START = "word_start"  # haresources: '#' at the start of a word starts a comment
    WHOLE_LINE = "whole_line"  # authkeys: only lines whose first non-blank is '#'


@dataclass(frozen=True)
class LogicalLine:
    """The words of one logical line and the numbers of its first and last physical lines (1-based).

    The last line lets a tool rewrite one group of a file without touching its neighbours.
    """

    line: int
    words: tuple[str, ...]
    end_line: int


_WORD_START_COMMENT = re.compile(r"(^|[ \t])#.*$")


def _strip_comment(text: str, comments: Comments) -> str:
    if comments is Comments.ANYWHERE:
        return text.split("#", 1)[0]
    if comments is Comments.WORD_START:
        return _WORD_START_COMMENT.sub("", text)
    return "" if text.lstrip().startswith("#") else text


def logical_lines(text: str, comments: Comments, continuation: bool = False) -> Iterator[LogicalLine]:
    """Yield the non-empty logical lines of text; words are split on spaces and tabs."""
    pending: list[str] = []
    first = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        body = _strip_comment(raw.rstrip("\r\n"), comments).rstrip()
        if not pending:
            first = number
        if continuation and body.endswith("\\"):
            pending.append(body[:-1])
            continue
        pending.append(body)
        words = tuple(" ".join(pending).split())
        pending = []
        if words:
            yield LogicalLine(first, words, number)
    if pending:
        words = tuple(" ".join(pending).split())
        if words:
            yield LogicalLine(first, words, number)
