"""`dataclass`, `field`, `replace`, `asdict` and `fields`: the part of `dataclasses` the agent uses, cheaply.

Why not `dataclasses` itself: `hbvip run` makes 64 record classes on its way to a running node, and
`dataclasses.dataclass` spends ~0.5 ms on each (it compiles every method from source text, and looks up
`typing` and `inspect` for each annotation): ~30 ms of the ~110 ms from exec to the control socket on
the lab machine (`python -m bench.bootcost`). This module makes the same classes in ~0.07 ms each: it
compiles only `__init__` when the class is made (its arguments and defaults are the class's own),
`__eq__` and `__hash__` the first time they are called, and uses plain closures for the rest (figures
before and after in docs/benchmarks.md).

Only the subset the agent uses exists, with dataclasses' semantics (tests/unit/test_records.py holds
each one against `dataclasses`): `@dataclass(frozen=..., repr=..., eq=...)`; `field(default=...,
default_factory=..., repr=..., compare=...)`; `__post_init__`; inheritance between records (base fields
first, a subclass may redefine one in place; a field without a default after one with a default is a
TypeError; frozen and non-frozen do not mix); `ClassVar[...]` annotations are not fields; `__hash__` as
dataclasses decides it (eq and frozen: the hash of the compared fields; eq alone: unhashable; a class's
own `__hash__` stays); `__match_args__`; the generated `__doc__` of a class without one; frozen
assignment and deletion raise `FrozenInstanceError` (an AttributeError). Annotations are never
evaluated (the agent's are strings: `from __future__ import annotations`). Not here: `order`,
`unsafe_hash`, `init=False`, `kw_only`, `slots`, `InitVar`, `astuple`, `make_dataclass`, `field(hash=,
metadata=)` — anything not listed fails loudly (an unknown keyword, or `__slots__`: TypeError).

One difference, on purpose: a frozen record's `__init__` stores its fields straight into the instance's
`__dict__` (dataclasses calls `object.__setattr__` once per field): making an `Incoming`, as the node
does for every datagram, takes 0.45 µs instead of 0.79 µs, and reading a field ~3 ns more (the values
live in that dict). It differs only for a class that puts a data descriptor (a property with a setter)
under a field's name, which no record does.

For type checkers and readers, the names are `dataclasses`' own (`TYPE_CHECKING` below), so tools
apply real dataclass semantics to every record.
"""

from __future__ import annotations

import abc
from _thread import get_ident

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing before the first heartbeat
if TYPE_CHECKING:
    from collections.abc import Callable
    from dataclasses import MISSING, Field, FrozenInstanceError, asdict, dataclass, field, fields, replace
else:
    __all__ = ["MISSING", "Field", "FrozenInstanceError", "asdict", "dataclass", "field", "fields", "replace"]

    class FrozenInstanceError(AttributeError):
        """Assigning to or deleting a field of a frozen record."""

_FIELDS = "__record_fields__"     # name -> Field, base fields first (dataclasses' __dataclass_fields__)
_FROZEN = "__record_frozen__"


class _Sentinel:
    """A marker with dataclasses' spelling, so a generated `__doc__` reads the same."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text


_MISSING = _Sentinel("MISSING")      # no default
_FACTORY = _Sentinel("<factory>")    # __init__'s default for a default_factory field


class _Field:
    """One field of a record; `fields()` returns these in `__init__`'s order."""

    __slots__ = ("name", "type", "default", "default_factory", "repr", "compare")

    def __init__(self, default: object, default_factory: object, repr: bool,  # pylint: disable=redefined-builtin
                 compare: bool) -> None:
        self.name: str = ""
        self.type: object = None
        self.default, self.default_factory, self.repr, self.compare = default, default_factory, repr, compare

    def __repr__(self) -> str:
        return (f"Field(name={self.name!r},type={self.type!r},default={self.default!r},"
                f"default_factory={self.default_factory!r},repr={self.repr!r},compare={self.compare!r})")


def _field(*, default: object = _MISSING, default_factory: object = _MISSING, repr: bool = True,  # pylint: disable=redefined-builtin
           compare: bool = True) -> object:
    """A field with a default, a default factory, left out of repr or left out of eq and hash."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory, repr, compare)


def _dataclass(cls: type | None = None, /, *, repr: bool = True, eq: bool = True,  # pylint: disable=redefined-builtin
               frozen: bool = False) -> object:
    """`@dataclass`, `@dataclass(frozen=True)`, `@dataclass(frozen=True, repr=False)`: see the module."""
    def wrap(cls: type) -> type:
        return _make_record(cls, repr, eq, frozen)
    return wrap if cls is None else wrap(cls)


def _make_record(cls: type, want_repr: bool, eq: bool, frozen: bool) -> type:
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: hbvip.records does not make slotted classes")
    fields = _inherited_fields(cls, frozen)
    for f in _own_fields(cls, fields):
        fields[f.name] = f
    setattr(cls, _FIELDS, fields)
    setattr(cls, _FROZEN, frozen)
    order = list(fields.values())
    own = cls.__dict__
    explicit_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    compared = [f.name for f in order if f.compare]
    _set_new(cls, "__init__", _init_fn(cls, order, frozen))
    if want_repr:
        _set_new(cls, "__repr__", _repr_fn(cls, tuple(f.name for f in order if f.repr)))
    if eq:
        _set_new(cls, "__eq__", _compiled_when_first_called(cls, "__eq__", _eq_source, compared))
    if frozen:
        names = frozenset(fields)
        if _set_new(cls, "__setattr__", _frozen_setattr(cls, names)):
            raise TypeError(f"Cannot overwrite attribute __setattr__ in class {cls.__name__}")
        if _set_new(cls, "__delattr__", _frozen_delattr(cls, names)):
            raise TypeError(f"Cannot overwrite attribute __delattr__ in class {cls.__name__}")
    if eq and not explicit_hash:
        cls.__hash__ = (_named(cls, _compiled_when_first_called(cls, "__hash__", _hash_source, compared))  # type: ignore[method-assign]
                        if frozen else None)
    if not getattr(cls, "__doc__"):
        cls.__doc__ = cls.__name__ + _signature(order).replace(" -> None", "")
    _set_new(cls, "__match_args__", tuple(fields))
    abc.update_abstractmethods(cls)
    return cls


def _inherited_fields(cls: type, frozen: bool) -> dict[str, _Field]:
    """The fields of the records `cls` derives from, the farthest base's first (dataclasses' order)."""
    fields: dict[str, _Field] = {}
    bases_frozen = []
    for base in cls.__mro__[-1:0:-1]:
        base_fields = getattr(base, _FIELDS, None)
        if base_fields is not None:
            fields.update(base_fields)
            bases_frozen.append(getattr(base, _FROZEN))
    if any(bases_frozen) and not frozen:
        raise TypeError("cannot inherit non-frozen dataclass from a frozen one")
    if bases_frozen and not all(bases_frozen) and frozen:
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
    return fields


def _own_fields(cls: type, fields: dict[str, _Field]) -> list[_Field]:
    """The fields `cls` annotates itself, in order; the class attribute becomes the default, as in dataclasses."""
    annotations = cls.__dict__.get("__annotations__", {})
    out = []
    for name, annotation in annotations.items():
        value = getattr(cls, name, _MISSING)   # an inherited class attribute too, as in dataclasses
        if _is_classvar(annotation):
            if isinstance(value, _Field) and value.default_factory is not _MISSING:
                raise TypeError(f"field {name} cannot have a default factory")
            fields.pop(name, None)
            continue
        f = value if isinstance(value, _Field) else _Field(value, _MISSING, True, True)
        f.name, f.type = name, annotation
        if f.default is not _MISSING and f.default.__class__.__hash__ is None:
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
        if isinstance(value, _Field):
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        out.append(f)
    for name, value in cls.__dict__.items():
        if isinstance(value, _Field) and name not in annotations:
            raise TypeError(f"{name!r} is a field but has no type annotation")
    return out


def _is_classvar(annotation: object) -> bool:
    """`ClassVar[int]`, `typing.ClassVar[int]` or `ClassVar` (as text: annotations are never evaluated)."""
    if annotation.__class__ is str and "ClassVar" not in annotation:  # type: ignore[operator]
        return False
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "_name", None) or getattr(annotation, "__name__", "")
    head = str(annotation).split("[", 1)[0].strip()
    return head == "ClassVar" or head.endswith(".ClassVar")


def _set_new(cls: type, name: str, value: object) -> bool:
    """Set `name` unless the class defines it itself; True if it does (dataclasses' _set_new_attribute)."""
    if name in cls.__dict__:
        return True
    setattr(cls, name, _named(cls, value) if callable(value) else value)
    return False


def _named(cls: type, function: Callable[..., object]) -> Callable[..., object]:
    """The generated method, named as the class's own (`Incoming.__init__` in a traceback)."""
    function.__qualname__ = f"{cls.__qualname__}.{function.__name__}"
    return function


def _init_fn(cls: type, order: list[_Field], frozen: bool) -> Callable[..., None]:
    """`__init__(self, a, b=..., c=<factory>)`, compiled: the one method every record needs at once."""
    me = "__record_self__" if "self" in {f.name for f in order} else "self"
    scope: dict[str, object] = {"__name__": cls.__module__, "_FACTORY": _FACTORY}
    params, values = [me], []
    seen_default = False
    for f in order:
        if f.default_factory is not _MISSING:
            scope[f"_dflt_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            values.append((f.name, f"_dflt_{f.name}() if {f.name} is _FACTORY else {f.name}"))
        else:
            if f.default is not _MISSING:
                scope[f"_dflt_{f.name}"] = f.default
                params.append(f"{f.name}=_dflt_{f.name}")
            elif seen_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
            else:
                params.append(f.name)
            values.append((f.name, f.name))
        seen_default = seen_default or f.default is not _MISSING or f.default_factory is not _MISSING
    if frozen:
        body = [f" {me}.__dict__.update({', '.join(f'{n}={v}' for n, v in values)})"] if values else []
    else:
        body = [f" {me}.{n} = {v}" for n, v in values]
    if hasattr(cls, "__post_init__"):
        body.append(f" {me}.__post_init__()")
    exec("\n".join([f"def __init__({', '.join(params)}):", *(body or [" pass"])]), scope)  # pylint: disable=exec-used
    init: Callable[..., None] = scope["__init__"]  # type: ignore[assignment]
    init.__annotations__ = {**{f.name: f.type for f in order}, "return": None}
    return init


def _eq_source(compared: list[str]) -> str:
    return ("def __eq__(self, other):\n if other.__class__ is self.__class__:\n"
            f"  return {_tuple('self', compared)} == {_tuple('other', compared)}\n return NotImplemented")


def _hash_source(compared: list[str]) -> str:
    return f"def __hash__(self):\n return hash({_tuple('self', compared)})"


def _compiled_when_first_called(cls: type, name: str, source: Callable[[list[str]], str],
                                compared: list[str]) -> Callable[..., object]:
    """A method compiled from `source` when it first runs, which then replaces itself in `cls`.

    Compiling `__eq__` and `__hash__` at once would double the cost of making a record class, and most
    records are never compared or hashed before the node is ready; once compiled, each runs as fast as
    dataclasses' own.
    """
    def first_call(*args: object) -> object:
        scope: dict[str, object] = {"__name__": cls.__module__}
        exec(source(compared), scope)  # pylint: disable=exec-used  # the text is made from field names only
        method: Callable[..., object] = _named(cls, scope[name])  # type: ignore[arg-type]
        if cls.__dict__.get(name) is first_call:
            setattr(cls, name, method)
        return method(*args)
    first_call.__name__ = name
    return first_call


def _tuple(name: str, fields: list[str]) -> str:
    return f"({','.join(f'{name}.{f}' for f in fields)},)" if fields else "()"


def _repr_fn(cls: type, names: tuple[str, ...]) -> Callable[[object], str]:
    """`Name(a=1, b='x')` with the fields shown, and `...` for a record met again inside itself."""
    running: set[tuple[int, int]] = set()

    def __repr__(self: object) -> str:
        key = id(self), get_ident()
        if key in running:
            return "..."
        running.add(key)
        try:
            return (f"{self.__class__.__qualname__}("
                    f"{', '.join(f'{n}={getattr(self, n)!r}' for n in names)})")
        finally:
            running.discard(key)
    return __repr__


def _frozen_setattr(cls: type, names: frozenset[str]) -> Callable[[object, str, object], None]:
    def __setattr__(self: object, name: str, value: object) -> None:
        # Exactly this class (not a subclass): a subclass that is not a record may set its own attributes.
        if type(self) is cls or name in names:  # pylint: disable=unidiomatic-typecheck
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[misc]  # a subclass's own attribute
    return __setattr__


def _frozen_delattr(cls: type, names: frozenset[str]) -> Callable[[object, str], None]:
    def __delattr__(self: object, name: str) -> None:
        if type(self) is cls or name in names:  # pylint: disable=unidiomatic-typecheck  # as in __setattr__
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[misc]
    return __delattr__


def _signature(order: list[_Field]) -> str:
    """What `str(inspect.signature(cls))` says of the generated `__init__`, for a class without a docstring."""
    def param(f: _Field) -> str:
        text = f"{f.name}: {_annotation_text(f.type)}"
        default = _FACTORY if f.default_factory is not _MISSING else f.default
        return text if default is _MISSING else f"{text} = {default!r}"
    return f"({', '.join(param(f) for f in order)}) -> None"


def _annotation_text(annotation: object) -> str:
    if isinstance(annotation, type):
        name = annotation.__qualname__
        return name if annotation.__module__ == "builtins" else f"{annotation.__module__}.{name}"
    return repr(annotation).replace("typing.", "")


def _fields(class_or_instance: object) -> tuple[_Field, ...]:
    """The fields of a record class or instance, in `__init__`'s order."""
    try:
        return tuple(getattr(class_or_instance, _FIELDS).values())
    except AttributeError:
        raise TypeError("must be called with a dataclass type or instance") from None


def _is_record_instance(obj: object) -> bool:
    return hasattr(type(obj), _FIELDS)


def _replace(obj: object, /, **changes: object) -> object:
    """A copy of the record `obj` with `changes`, made by its class (so `__post_init__` runs again)."""
    if not _is_record_instance(obj):
        raise TypeError("replace() should be called on dataclass instances")
    for name in getattr(obj, _FIELDS):
        if name not in changes:
            changes[name] = getattr(obj, name)
    return obj.__class__(**changes)


def _asdict(obj: object, *, dict_factory: Callable[[list[tuple[str, object]]], object] = dict) -> object:
    """The record as a dict, records, lists, tuples and dicts inside it converted too, the rest deep-copied."""
    if not _is_record_instance(obj):
        raise TypeError("asdict() should be called on dataclass instances")
    return _asdict_inner(obj, dict_factory)


def _asdict_inner(obj: object, dict_factory: Callable[[list[tuple[str, object]]], object]) -> object:
    if _is_record_instance(obj):
        return dict_factory([(f.name, _asdict_inner(getattr(obj, f.name), dict_factory)) for f in _fields(obj)])
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*[_asdict_inner(v, dict_factory) for v in obj])
    if isinstance(obj, (list, tuple)):
        return type(obj)(_asdict_inner(v, dict_factory) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((_asdict_inner(k, dict_factory), _asdict_inner(v, dict_factory)) for k, v in obj.items())
    import copy  # pylint: disable=import-outside-toplevel  # only `hbvip status` and check-config get here
    return copy.deepcopy(obj)


if not TYPE_CHECKING:
    MISSING, Field = _MISSING, _Field
    dataclass, field, fields, replace, asdict = _dataclass, _field, _fields, _replace, _asdict
