"""Every directory under tests/data/config/broken is a config an operator could write; each must
be refused with the one clear `file:line: message` its expect.toml names."""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest

from hbvip.config import ConfigError, load_config

BROKEN = Path(__file__).resolve().parents[1] / "data" / "config" / "broken"
CASES = sorted(p.name for p in BROKEN.iterdir() if p.is_dir())


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)  # copy2 keeps the script modes git tracks
    if (dst / "authkeys").exists():
        os.chmod(dst / "authkeys", 0o600)  # git does not keep 0600; permissions have their own test
    return dst


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_broken_config_is_refused_with_file_line_and_message(case: str, tmp_path: Path) -> None:
    expect = tomllib.loads((BROKEN / case / "expect.toml").read_text())
    config_dir = _copy(BROKEN / case, tmp_path / case)
    (config_dir / "expect.toml").unlink()
    file_name, _unused, line = expect["where"].partition(":")
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, "server1", init_dir=tmp_path / "no-init.d")
    matching = [
        p for p in caught.value.problems
        if p.is_error and Path(p.path).name == file_name and p.line == (int(line) if line else None)
        and expect["fragment"] in str(p)
    ]
    assert matching, f"expected {expect['where']}: ...{expect['fragment']}... in:\n{caught.value}"
    where = f"{config_dir / file_name}:{line}: " if line else f"{config_dir / file_name}: "
    assert str(matching[0]).startswith(where)
    assert " — " in str(matching[0]), "every error says how to fix it"
