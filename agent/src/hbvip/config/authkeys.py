"""authkeys: the shared secret that signs every heartbeat.

Grammar (Heartbeat): `auth N` selects key N; `N crc`, `N md5 KEY`, `N sha1 KEY`, plus hbvip's
extension `N sha256 KEY`.  The secret is never put in a Problem, a repr or an exception: those
end up in logs, terminals and bug reports.  So messages here name line numbers, key numbers
and methods, never the text of a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hbvip.config.lexer import Comments, logical_lines
from hbvip.config.problems import WARNING, Problem
from hbvip.config.values import did_you_mean
from hbvip.records import dataclass, field

METHODS = ("crc", "md5", "sha1", "sha256")
KEYED_METHODS = frozenset({"md5", "sha1", "sha256"})
MAX_KEY_NUMBER = 15  # Heartbeat keeps 16 slots and ignores slot 0
_FORM = "write 'auth 1' and '1 sha1 <secret>'"


@dataclass(frozen=True, repr=False)
class AuthKey:
    """One authkeys key (its secret never printed)."""
    number: int
    method: str
    secret: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"AuthKey(number={self.number}, method={self.method!r}, secret=<hidden>)"

    __str__ = __repr__


@dataclass(frozen=True)
class AuthKeys:
    """authkeys as read: the active key number and every key."""
    path: str
    active: int
    keys: Mapping[int, AuthKey]

    @property
    def active_key(self) -> AuthKey:
        return self.keys[self.active]


def _key_number(word: str) -> int | None:
    return int(word) if word.isdigit() and 1 <= int(word) <= MAX_KEY_NUMBER else None


def _key_line_problem(number: int, rest: tuple[str, ...]) -> tuple[str, str] | None:
    """(message, fix) when a key line's method or secret is wrong, else None."""
    if not rest:
        return f"key {number} has no method", f"use one of {', '.join(METHODS)}: {_FORM}"
    # The method word is never echoed: a line missing its method has the secret there.
    method = rest[0].lower()
    if method not in METHODS:
        return (f"key {number} has an unknown method{did_you_mean(method, METHODS)}",
                f"use one of {', '.join(METHODS)}")
    secrets = rest[1:]
    if method in KEYED_METHODS and not secrets:
        return f"key {number} ({method}) has no secret", f"write '{number} {method} <secret>'"
    if len(secrets) > 1:
        return (f"key {number} ({method}): the secret must be one word without spaces",
                "remove the spaces from the secret (on both nodes)")
    return None


def parse_authkeys(text: str, path: str) -> tuple[AuthKeys | None, list[Problem]]:
    """Parse authkeys text; returns (AuthKeys or None when any error was found, all problems)."""
    problems: list[Problem] = []
    keys: dict[int, AuthKey] = {}
    key_lines: dict[int, int] = {}
    active: int | None = None
    auth_line: int | None = None

    def error(line: int | None, message: str, fix: str) -> None:
        problems.append(Problem(path, line, message, fix))

    for ll in logical_lines(text, Comments.WHOLE_LINE):
        first, rest = ll.words[0], ll.words[1:]
        if first == "auth":
            if auth_line is not None:
                error(ll.line, f"auth is given twice (first on line {auth_line})", "keep one 'auth N' line")
                continue
            auth_line = ll.line
            if len(rest) != 1 or _key_number(rest[0]) is None:
                error(ll.line, f"auth needs one key number 1-{MAX_KEY_NUMBER}", _FORM)
                continue
            active = int(rest[0])
            continue
        number = _key_number(first)
        if number is None:
            hint = did_you_mean(first, ["auth"]) if not first.isdigit() else ""
            error(ll.line, f"line does not start with 'auth' or a key number 1-{MAX_KEY_NUMBER}{hint}", _FORM)
            continue
        wrong = _key_line_problem(number, rest)
        if wrong is not None:
            error(ll.line, *wrong)
            continue
        method, secrets = rest[0].lower(), rest[1:]
        if number in keys:
            error(ll.line, f"key {number} is defined twice (first on line {key_lines[number]})",
                  "keep one line per key number")
            continue
        if method == "crc":
            problems.append(Problem(path, ll.line, f"key {number} uses crc, which authenticates nothing",
                                    "use sha1 (or sha256 between hbvip nodes) with a secret", WARNING))
        secret = secrets[0].encode("utf-8", "surrogateescape") if secrets else b""
        keys[number] = AuthKey(number, method, secret)
        key_lines[number] = ll.line

    if auth_line is None:
        error(None, "no 'auth N' line selects a key (Heartbeat: No authentication specified)", _FORM)
    elif active is not None and active not in keys:
        error(auth_line, f"auth {active} selects key {active}, which is not defined",
              f"add a line '{active} sha1 <secret>' or point auth at a defined key")
    if any(p.is_error for p in problems) or active is None:
        return None, problems
    return AuthKeys(path, active, MappingProxyType(keys)), problems
