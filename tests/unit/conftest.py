"""Fixtures shared by the unit tests."""
from __future__ import annotations

import os
import shutil
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
