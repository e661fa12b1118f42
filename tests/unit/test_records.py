"""hbvip.records behaves as `dataclasses` for everything the agent asks of it: each test makes the same
class with both and expects the same answers (the agent's records switched from one to the other)."""

from __future__ import annotations

import ast
import collections
import dataclasses
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pytest

from hbvip import records

LIBS = [pytest.param(dataclasses, id="dataclasses"), pytest.param(records, id="records")]
AGENT = Path(__file__).resolve().parents[2] / "agent" / "src" / "hbvip"
Pair = collections.namedtuple("Pair", "a b")


def point(lib: ModuleType, **params: bool) -> type:
    """One record of each kind of field: plain, default, default factory, left out of eq, out of repr."""
    @lib.dataclass(**params)
    class Point:
        """A point."""

        x: int
        y: int = 0
        tags: list[str] = lib.field(default_factory=list)
        seen: float = lib.field(default=0.0, compare=False)
        secret: bytes = lib.field(default=b"", repr=False)
    return Point


def both(**params: bool) -> tuple[type, type]:
    return point(dataclasses, **params), point(records, **params)


def test_init_takes_the_same_arguments_and_defaults() -> None:
    for lib in (dataclasses, records):
        cls = point(lib, frozen=True)
        p, q = cls(1), cls(1, 2, ["a"], seen=3.0, secret=b"k")
        assert (p.x, p.y, p.tags, p.seen, p.secret) == (1, 0, [], 0.0, b"")
        assert (q.x, q.y, q.tags, q.seen, q.secret) == (1, 2, ["a"], 3.0, b"k")
        assert cls(1).tags is not cls(1).tags                     # a fresh list each time
        assert cls.y == 0 and cls.seen == 0.0 and "tags" not in cls.__dict__   # defaults are class attributes
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls(1, z=2)
    dc, rec = both()
    assert dc.__init__.__annotations__ == rec.__init__.__annotations__


@pytest.mark.parametrize("frozen", [True, False])
def test_eq_compares_the_class_and_the_compared_fields(frozen: bool) -> None:
    for cls in both(frozen=frozen):
        assert cls(1, 2, ["a"], seen=1.0) == cls(1, 2, ["a"], seen=2.0)   # `seen` is compare=False
        assert cls(1, 2) != cls(1, 3)
        assert cls(1) != (1, 0, [], b"")
        assert cls(1) != point(records, frozen=frozen)(1)               # same fields, another class
    for cls in both(frozen=True):
        assert cls(float("nan")) != cls(float("nan"))    # nan != nan
        p = cls(float("nan"))
        assert p == cls(p.x)           # but the very same object is equal in a tuple: dataclasses' compare


def test_hash_is_decided_as_dataclasses_decides_it() -> None:
    dc, rec = both(frozen=True)
    assert hash(dc(1, 2, (), seen=5.0)) == hash(rec(1, 2, (), seen=7.0)) == hash((1, 2, (), b""))
    assert {rec(1, 2, ()), rec(1, 2, ())} == {rec(1, 2, ())}
    for cls in both():                      # eq without frozen: unhashable
        assert cls.__hash__ is None
        with pytest.raises(TypeError):
            hash(cls(1))
    for cls in both(frozen=True, eq=False):  # no eq: identity
        p = cls(1)
        assert hash(p) == object.__hash__(p) and p != cls(1)
    for lib in (dataclasses, records):
        @lib.dataclass(frozen=True)
        class Own:
            x: int

            def __hash__(self) -> int:
                return 7
        assert hash(Own(1)) == 7

        @lib.dataclass(frozen=True)
        class OwnEq:
            x: int

            def __eq__(self, other: object) -> bool:
                return True
        assert hash(OwnEq(1)) == hash((1,)) and OwnEq(1) == OwnEq(2)   # its own eq, the fields' hash


def test_a_frozen_record_cannot_change() -> None:
    for lib in (dataclasses, records):
        p = point(lib, frozen=True)(1)
        with pytest.raises(lib.FrozenInstanceError, match="cannot assign to field 'x'"):
            p.x = 2  # type: ignore[misc]
        with pytest.raises(AttributeError, match="cannot assign to field 'other'"):
            p.other = 2  # type: ignore[attr-defined]
        with pytest.raises(AttributeError, match="cannot delete field 'y'"):
            del p.y  # type: ignore[misc]
        assert p.x == 1
    assert issubclass(records.FrozenInstanceError, AttributeError)
    open_point = point(records)(1)
    open_point.x = 5
    assert open_point.x == 5


def test_repr_matches_and_leaves_out_repr_false_fields() -> None:
    dc, rec = both(frozen=True)
    assert repr(rec(1, 2, ["a"], secret=b"k")) == repr(dc(1, 2, ["a"], secret=b"k"))
    assert repr(rec(1)) == "point.<locals>.Point(x=1, y=0, tags=[], seen=0.0)"
    for cls in both(frozen=True, repr=False):
        assert repr(cls(1)).startswith("<")                                # object's own
    looped = rec(1, tags=[])
    looped.tags.append(looped)
    assert repr(looped).count("...") == 1                                    # a record inside itself


def test_post_init_runs_after_the_fields_are_set_and_again_on_replace() -> None:
    for lib in (dataclasses, records):
        @lib.dataclass(frozen=True)
        class Clamped:
            level: int
            calls: list[int] = lib.field(default_factory=list, compare=False)

            def __post_init__(self) -> None:
                self.calls.append(self.level)
                object.__setattr__(self, "level", min(self.level, 10))
        c = Clamped(50)
        assert c.level == 10 and c.calls == [50]
        d = lib.replace(c, level=20)
        assert d.level == 10 and d.calls == [50, 20] and d.calls is c.calls   # replace passes every field


def test_inheritance_puts_base_fields_first_and_checks_defaults_and_frozenness() -> None:
    def derived(lib: ModuleType) -> type:
        @lib.dataclass(frozen=True)
        class Base:
            a: int
            b: str = "b"

        @lib.dataclass(frozen=True)
        class Child(Base):
            c: float = 1.0
            b: str = "child"       # redefined: keeps its place, takes the new default
        return Child
    dc, rec = derived(dataclasses), derived(records)
    assert [(f.name, f.type, f.default) for f in records.fields(rec)] == [
        ("a", "int", records.MISSING), ("b", "str", "child"), ("c", "float", 1.0)]
    assert [(f.name, f.type, f.default) for f in dataclasses.fields(dc)] == [
        ("a", "int", dataclasses.MISSING), ("b", "str", "child"), ("c", "float", 1.0)]
    assert repr(rec(1)).endswith("Child(a=1, b='child', c=1.0)") and rec(1) == rec(1, "child", 1.0)
    assert rec.__match_args__ == dc.__match_args__ == ("a", "b", "c")
    for lib in (dataclasses, records):
        @lib.dataclass
        class WithDefault:
            a: int = 0
        with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
            lib.dataclass(type("Sub", (WithDefault,), {"__annotations__": {"b": "int"}}))
        with pytest.raises(TypeError, match="cannot inherit frozen dataclass from a non-frozen one"):
            lib.dataclass(frozen=True)(type("Sub", (WithDefault,), {}))
        frozen = lib.dataclass(frozen=True)(type("Frozen", (), {"__annotations__": {"a": "int"}}))
        with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen one"):
            lib.dataclass(type("Sub", (frozen,), {}))


def test_class_variables_are_not_fields() -> None:
    for lib in (dataclasses, records):
        @lib.dataclass(frozen=True)
        class Counted:
            LIMIT: ClassVar[int] = 3
            total: int
        assert [f.name for f in lib.fields(Counted)] == ["total"] and Counted.LIMIT == 3
        assert Counted(5).total == 5


def test_match_args_let_records_be_matched_by_position() -> None:
    for cls in both(frozen=True):
        assert cls.__match_args__ == ("x", "y", "tags", "seen", "secret")
        match cls(1, 2):
            case cls(1, y):  # type: ignore[misc]
                assert y == 2
            case _:
                pytest.fail("no match")


def test_replace_and_asdict_give_what_dataclasses_gives() -> None:
    def nested(lib: ModuleType) -> tuple[type, type]:
        @lib.dataclass(frozen=True)
        class Inner:
            v: int

        @lib.dataclass(frozen=True)
        class Outer:
            inner: Inner
            items: tuple[Inner, ...]
            by_name: dict[str, Inner]
            pair: Pair
            data: list[int]
        return Inner, Outer
    answers = []
    for lib in (dataclasses, records):
        inner, outer = nested(lib)
        o = outer(inner(1), (inner(2),), {"k": inner(3)}, Pair(inner(4), 5), [6])
        as_dict = lib.asdict(o)
        # copied; a namedtuple stays that very type (not a plain tuple)
        assert as_dict["data"] is not o.data and type(as_dict["pair"]) is Pair  # pylint: disable=unidiomatic-typecheck
        answers.append((as_dict, lib.asdict(o, dict_factory=list), lib.replace(o, data=[7]).data,
                        lib.replace(o).inner.v))
        with pytest.raises(TypeError):
            lib.replace(o, nope=1)
        with pytest.raises(TypeError):
            lib.replace(o.pair)
        with pytest.raises(TypeError):
            lib.asdict(inner)             # a class, not an instance
        with pytest.raises(TypeError):
            lib.fields(o.pair)
    assert answers[0] == answers[1]
    assert answers[1][0] == {"inner": {"v": 1}, "items": ({"v": 2},), "by_name": {"k": {"v": 3}},
                             "pair": ({"v": 4}, 5), "data": [6]}


def test_mistakes_are_the_errors_dataclasses_raises() -> None:
    for lib in (dataclasses, records):
        with pytest.raises(ValueError, match="cannot specify both default and default_factory"):
            lib.field(default=1, default_factory=list)
        with pytest.raises(ValueError, match="mutable default <class 'list'> for field xs"):
            lib.dataclass(type("Bad", (), {"__annotations__": {"xs": "list[int]"}, "xs": []}))
        with pytest.raises(TypeError, match="'y' is a field but has no type annotation"):
            lib.dataclass(type("Bad", (), {"__annotations__": {}, "y": lib.field(default=1)}))
        with pytest.raises(TypeError, match="Cannot overwrite attribute __setattr__"):
            lib.dataclass(frozen=True)(type("Bad", (), {"__annotations__": {}, "__setattr__": lambda *a: None}))


def test_a_class_without_a_docstring_gets_dataclasses_one() -> None:
    docs = []
    for lib in (dataclasses, records):
        @lib.dataclass
        class NoDoc:
            a: int
            b: str | None = None
            c: list[int] = lib.field(default_factory=list)
        docs.append(NoDoc.__doc__)
    assert docs[0] == docs[1] == "NoDoc(a: 'int', b: 'str | None' = None, c: 'list[int]' = <factory>)"


def test_a_field_may_be_called_self() -> None:
    for lib in (dataclasses, records):
        @lib.dataclass(frozen=True)
        class Odd:
            self: int
            other: int = 0
        assert Odd(self=1, other=2).self == 1 and Odd(1) == Odd(1)


def test_making_a_record_imports_neither_dataclasses_nor_inspect_nor_typing() -> None:
    code = ("import sys\n"
            "from hbvip.records import dataclass, field, replace\n"
            "@dataclass(frozen=True)\n"
            "class R:\n"
            "    a: int\n"
            "    b: tuple = field(default_factory=tuple)\n"
            "r = replace(R(1), a=2)\n"
            "assert r == R(2) and hash(r) == hash(R(2)) and repr(r) == 'R(a=2, b=())'\n"
            "print(' '.join(m for m in ('dataclasses', 'inspect', 'typing') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd="/", check=False)
    assert out.returncode == 0 and out.stdout == "\n", out.stderr


def test_no_agent_module_imports_dataclasses_at_run_time() -> None:
    """One record machinery in the agent: a module that imports dataclasses brings its cost back."""
    found = []
    for path in AGENT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        guarded = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for n in ast.walk(node)}
        found += [f"{path.relative_to(AGENT)}:{node.lineno}" for node in ast.walk(tree)
                  if id(node) not in guarded and (
                      (isinstance(node, ast.ImportFrom) and node.module == "dataclasses")
                      or (isinstance(node, ast.Import) and any(a.name == "dataclasses" for a in node.names)))]
    assert not found, found
