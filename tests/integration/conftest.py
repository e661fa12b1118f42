"""Fixtures for tests that need the namespace lab: skip cleanly where it cannot run, always tear down."""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from lab import Lab
from pair import Pair

_LAB_FIXTURES = {"lab", "lab_factory", "lab_support", "lab_prefix"}
_counter = itertools.count()


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None. Probes with an anonymous netns: nothing to clean up."""
    if os.geteuid() != 0:
        return "the lab needs root (network, mount and UTS namespaces)"
    missing = [t for t in ("ip", "nsenter", "unshare") if shutil.which(t) is None]
    if missing:
        return f"the lab needs {', '.join(missing)}"
    probe = subprocess.run(["unshare", "--net", "--mount", "--uts", "true"], check=False, capture_output=True, text=True)
    if probe.returncode != 0:
        return f"namespaces unavailable: {probe.stderr.strip()}"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses a lab fixture is a `lab` test, so `-m "not lab"` leaves them out."""
    for item in items:
        if _LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab_support() -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def lab_prefix(lab_support: None) -> Callable[[], str]:
    """Unique namespace prefixes for this test process: hbt<pid>n<k>."""
    return lambda: f"hbt{os.getpid()}n{next(_counter)}"


@pytest.fixture
def lab_factory(lab_prefix: Callable[[], str]) -> Iterator[Callable[..., Lab]]:
    """make(hosts=..., ssh=...) -> a started Lab with a unique prefix and a free net; all torn down
    when the test ends, whatever happened."""
    with ExitStack() as stack:

        def make(hosts: Sequence[str] = ("server1", "server2"), *, ssh: bool = False) -> Lab:
            return stack.enter_context(Lab(prefix=lab_prefix(), net=None, hosts=hosts, ssh=ssh))

        yield make


@pytest.fixture
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    return lab_factory()


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `pip wheel ./agent` needs (pyroute2, the build backend), fetched where an index answers
    (the lab's controller has no route to one); for the role's `agent` engine modules."""
    dest = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "--dest", str(dest),
         "pyroute2>=0.7.12", "setuptools>=68", "wheel"],
        check=True, timeout=300,
    )
    return dest


@pytest.fixture
def pair(lab: Lab) -> Iterator[Pair]:
    """The pair harness on a fresh lab: `pair.start(timers)` installs the seed's files and starts both
    agents; every agent, probe and watch it started is stopped when the test ends, whatever happened."""
    p = Pair(lab)
    try:
        yield p
    finally:
        p.close()
