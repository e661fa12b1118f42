"""Rename nodes in ha.cf and haresources, changing no byte but the names.

`hbvip rename-node` (and playbooks/rename_node.yml through it) edits the files with the lexer the
agent loads them with, so comments, continuation lines and spacing stay byte for byte. Only words
the grammar reads as a node name change: the names on ha.cf `node` lines, `ucast` peers given by
name, the home node of each haresources group, and the pair's names in the header comment the
role writes (`# hbvip.heartbeat pair A B, VIP ...`), so that a later site.yml run with the new
names renders the same bytes and changes nothing.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from hbvip.config.lexer import Comments, logical_lines
from hbvip.config.problems import Problem
from hbvip.config.values import is_host_name
from hbvip.records import dataclass

FILES = ("ha.cf", "haresources")
# The role's header line in ha.cf (roles/heartbeat_vip/templates/ha.cf.j2): names up to the comma.
_ROLE_HEADER = re.compile(r"^# hbvip\.heartbeat pair ([^,\n]*)", re.M)
_NAME = re.compile(r"\S+")


@dataclass(frozen=True)
class FileEdit:
    """One file before and after the rename, and the physical lines that changed."""

    path: str
    before: str
    after: str
    lines: tuple[int, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True),
                                            self.after.splitlines(keepends=True),
                                            fromfile=self.path, tofile=self.path))


def _hacf_names(text: str) -> Iterator[tuple[int, str]]:
    """(offset, word) of every node name in ha.cf: `node` arguments, `ucast` peers, the role's header."""
    for ll in logical_lines(text, Comments.ANYWHERE):
        if ll.words[0] == "node":
            yield from zip(ll.offsets[1:], ll.words[1:])
        elif ll.words[0] == "ucast":
            yield from zip(ll.offsets[2:], ll.words[2:])
    for header in _ROLE_HEADER.finditer(text):
        for word in _NAME.finditer(header.group(1)):
            yield header.start(1) + word.start(), word.group()


def _haresources_names(text: str) -> Iterator[tuple[int, str]]:
    """(offset, word) of each group's home node."""
    for ll in logical_lines(text, Comments.WORD_START, continuation=True):
        yield ll.offsets[0], ll.words[0]


def _replace(text: str, path: str, names: Iterator[tuple[int, str]], renames: Mapping[str, str]) -> FileEdit:
    """Names are compared as Heartbeat compares node names (ignoring case); the new one is written as given."""
    wanted = {old.lower(): new for old, new in renames.items()}
    edits = sorted((offset, word, wanted[word.lower()]) for offset, word in names
                   if word.lower() in wanted and word != wanted[word.lower()])
    out, last = [], 0
    for offset, word, new in edits:
        out += [text[last:offset], new]
        last = offset + len(word)
    out.append(text[last:])
    lines = sorted({len((text[:edit[0]] + "x").splitlines()) for edit in edits})  # numbered as the lexer does
    return FileEdit(path, text, "".join(out), tuple(lines))


def node_names(hacf_text: str) -> list[str]:
    """The names on ha.cf's `node` lines, in order."""
    return [w for ll in logical_lines(hacf_text, Comments.ANYWHERE) if ll.words[0] == "node" for w in ll.words[1:]]


def plan_rename(texts: Mapping[str, str], paths: Mapping[str, str],
                renames: Mapping[str, str]) -> tuple[list[FileEdit], list[Problem]]:
    """The edits of ha.cf and haresources that rename each old node name to its new one.

    A name already renamed (the old one gone from ha.cf, the new one there) is left alone, so a rerun
    after a partial rename finishes it. Problems (unknown node, bad or clashing new name) mean that
    nothing may be written.
    """
    hacf = paths["ha.cf"]
    problems: list[Problem] = []
    nodes = [n.lower() for n in node_names(texts["ha.cf"])]
    todo: dict[str, str] = {}
    for old, new in renames.items():
        if not is_host_name(new):
            problems.append(Problem(hacf, None, f"new node name {new!r} is not a valid host name",
                                    "use letters, digits, '-' and '.' (what `uname -n` would print)"))
        elif old.lower() in nodes:
            todo[old] = new
        elif new.lower() not in nodes:
            problems.append(Problem(hacf, None, f"node {old} is not on a node line of ha.cf ({', '.join(nodes) or 'none'})",
                                    "give the current name of a node of this pair (its `uname -n`)"))
    final = [next((new.lower() for old, new in todo.items() if old.lower() == n), n) for n in nodes]
    if len(set(final)) != len(final):
        problems.append(Problem(hacf, None, f"the rename would give two nodes one name ({', '.join(final)})",
                                "give each node a name no other node has"))
    if problems:
        return [], problems
    return [_replace(texts["ha.cf"], hacf, _hacf_names(texts["ha.cf"]), todo),
            _replace(texts["haresources"], paths["haresources"], _haresources_names(texts["haresources"]), todo)], []


def read_files(config_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Texts and paths of ha.cf and haresources; raises OSError for a missing or unreadable file."""
    paths = {name: str(config_dir / name) for name in FILES}
    return {name: Path(path).read_text(encoding="utf-8") for name, path in paths.items()}, paths


def write_atomically(edit: FileEdit) -> None:
    """A temp file in the same directory with the old file's mode and owner, then rename: a reader
    (the agent, on reload) never sees half a file."""
    st = os.stat(edit.path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(edit.path)}.", dir=os.path.dirname(edit.path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(edit.after)
        os.chmod(tmp, st.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, edit.path)
    except BaseException:
        os.unlink(tmp)
        raise
