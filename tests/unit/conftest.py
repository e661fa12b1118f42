"""Fixtures shared by the unit tests."""
from __future__ import annotations

import os
import shutil
import types
import typing
from collections.abc import Callable
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parents[1] / "data" / "config" / "good" / "seed"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A writable copy of the seed's /etc/ha.d (authkeys mode 600, as the agent demands)."""
    d = tmp_path / "ha.d"
    shutil.copytree(SEED, d)
    os.chmod(d / "authkeys", 0o600)
    return d


def _shape_errors(value: object, shape: object, where: str = "") -> list[str]:
    """Where `value` (a JSON document) has other keys than the TypedDict `shape` declares, recursively."""
    hints = typing.get_type_hints(shape)
    if not isinstance(value, dict):
        return [f"{where or '.'}: not an object"]
    errors = [f"{where}.{k}: missing" for k in hints if k not in value]
    errors += [f"{where}.{k}: not in the shape" for k in value if k not in hints]
    for key, hint in hints.items():
        if value.get(key) is None:
            continue
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
        for arg in typing.get_args(hint) if optional else (hint,):
            if typing.get_origin(arg) is list and typing.is_typeddict(typing.get_args(arg)[0]):
                for n, item in enumerate(value[key]):
                    errors += _shape_errors(item, typing.get_args(arg)[0], f"{where}.{key}[{n}]")
            elif typing.is_typeddict(arg):
                errors += _shape_errors(value[key], arg, f"{where}.{key}")
    return errors


@pytest.fixture
def assert_shape() -> Callable[[object, object], None]:
    """`assert_shape(document, SomeView)`: the document has exactly the keys hbvip.views declares."""
    def check(value: object, shape: object) -> None:
        errors = _shape_errors(value, shape)
        assert not errors, errors
    return check
