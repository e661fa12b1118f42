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
from enum import Enum

from hbvip.records import dataclass, field


class Comments(Enum):
    ANYWHERE = "anywhere"      # ha.cf, hbvip.cf: '#' anywhere starts a comment
    WORD_START = "word_start"  # haresources: '#' at the start of a word starts a comment
    WHOLE_LINE = "whole_line"  # authkeys: only lines whose first non-blank is '#'


@dataclass(frozen=True)
class LogicalLine:
    """The words of one logical line and the numbers of its first and last physical lines (1-based).

    The last line lets a tool rewrite one group of a file without touching its neighbours; the
    offsets (where each word starts in the text) let it rename one word and change no other byte.
    """

    line: int
    words: tuple[str, ...]
    end_line: int
    offsets: tuple[int, ...] = field(default=(), compare=False)


_WORD = re.compile(r"\S+")  # the words str.split() finds, with their positions
_WORD_START_COMMENT = re.compile(r"(^|[ \t])#.*$")


def _strip_comment(text: str, comments: Comments) -> str:
    if comments is Comments.ANYWHERE:
        return text.split("#", 1)[0]
    if comments is Comments.WORD_START:
        return _WORD_START_COMMENT.sub("", text)
    return "" if text.lstrip().startswith("#") else text


def logical_lines(text: str, comments: Comments, continuation: bool = False) -> Iterator[LogicalLine]:
    """Yield the non-empty logical lines of text; words are split on whitespace.

    Physical lines are what str.splitlines() makes of the text; what a comment or a trailing `\\`
    leaves of each is a prefix of it, so every word's offset in the text is known.
    """
    words: list[str] = []
    offsets: list[int] = []
    continued = False
    first = number = 0
    start = 0
    for number, physical in enumerate(text.splitlines(keepends=True), start=1):
        raw = physical.splitlines()[0] if physical.splitlines() else ""
        body = _strip_comment(raw, comments).rstrip()
        if not continued:
            first = number
        continued = continuation and body.endswith("\\")
        for match in _WORD.finditer(body[:-1] if continued else body):
            words.append(match.group())
            offsets.append(start + match.start())
        start += len(physical)
        if continued:
            continue
        if words:
            yield LogicalLine(first, tuple(words), number, tuple(offsets))
        words, offsets = [], []
    if continued and words:
        yield LogicalLine(first, tuple(words), number, tuple(offsets))
