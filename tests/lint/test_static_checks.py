"""The checkout passes its static checks (`scripts/lint.sh`: byte-compile, ansible-lint production,
ansible-test sanity), as one test of `make test`.

Why a test and not a step after pytest: lint takes about 1.5 minutes, and run as a test it is handed
to whichever pytest-xdist worker frees up first near the end of the lab tests, instead of adding its
time after them. `make lint` runs the same script alone.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1500)
def test_the_checkout_passes_ansible_lint_and_ansible_test_sanity() -> None:
    result = subprocess.run(["bash", "scripts/lint.sh"], cwd=REPO, check=False, capture_output=True, text=True,
                            timeout=1400)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
