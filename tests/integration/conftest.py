"""Fixtures for tests that need the namespace lab: skip cleanly where it cannot run, always tear down."""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from ansible_lab import FAST_TIMERS, REPO, SECRET, AnsibleLab
from ansible_lab import wheelhouse  # noqa: F401 pylint: disable=unused-import  # a fixture, used by name
from lab import Lab
from pair import Pair

_LAB_FIXTURES = {"lab", "lab_factory", "lab_support", "lab_prefix", "ansible_lab", "changes_lab"}
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
    """Every test that uses a lab fixture is a `lab` test, so `-m "not lab"` leaves them out; the long
    modules go first (see _LONG_MODULES; `make test` passes --no-loadscope-reorder, without which
    pytest-xdist would reorder the modules by their number of tests).

    `make test` runs `pytest -n N --dist loadfile`: all tests of one module run in one worker, so a
    module-scoped lab is built once. A session lab is built once per worker that uses it, so tests that
    are to share one must live in one module: `ansible_lab` is test_role.py's (the role's agent engine,
    then its switch to engine heartbeat and back), `changes_lab` test_role_changes.py's. (`--dist
    loadgroup` would group across modules, but pytest-xdist 3.8 cannot rename the node ids of pytest 9,
    so its groups silently do nothing.)"""
    items.sort(key=_start_early)
    for item in items:
        if _LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


#: Modules that take minutes (Ansible runs, booted hosts): handed out first, so no worker picks one of
#: them up at the end while the others sit idle. Within a module the order stays as written.
_LONG_MODULES = ("test_role", "test_role_changes", "test_role_dual_stack", "test_rename", "test_systemd",
                 "test_demo", "test_bench_smoke", "test_static_checks")


def _start_early(item: pytest.Item) -> int:
    module = getattr(getattr(item, "module", None), "__name__", "")
    return _LONG_MODULES.index(module) if module in _LONG_MODULES else len(_LONG_MODULES)


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
    """make(hosts=..., ssh=..., ipv6=..., second_network=...) -> a started Lab with a unique prefix and a free net; all torn down
    when the test ends, whatever happened."""
    with ExitStack() as stack:

        def make(hosts: Sequence[str] = ("server1", "server2"), *, ssh: bool = False, ipv6: bool = False,
                 second_network: bool = False) -> Lab:
            return stack.enter_context(Lab(prefix=lab_prefix(), net=None, hosts=hosts, ssh=ssh, ipv6=ipv6,
                                           second_network=second_network))

        yield make


@pytest.fixture
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    return lab_factory()


@pytest.fixture
def pair(lab: Lab) -> Iterator[Pair]:
    """The pair harness on a fresh lab: `pair.start(timers)` installs the seed's files and starts both
    agents; every agent, probe and watch it started is stopped when the test ends, whatever happened."""
    p = Pair(lab)
    try:
        yield p
    finally:
        p.close()


def _provisioned_lab(name: str, wheelhouse: Path, *, check_first: bool = False) -> Iterator[AnsibleLab]:
    with Lab(prefix=f"{name}{os.getpid()}", net=None, hosts=("server1", "server2"), ssh=True) as lab:
        variables: dict[str, object] = {
            "heartbeat_vip_engine": "agent",
            "heartbeat_vip_vip": {"address": lab.vip, "prefix": 24},
            "heartbeat_vip_auth_secret": SECRET,
            "heartbeat_vip_agent_wheel_find_links": str(wheelhouse),
            **FAST_TIMERS,
        }
        inventory = lab.write_inventory(lab.dir / "inventory.yml", group="hbvip_pairs", extra_vars=variables)
        yield AnsibleLab(lab, inventory, variables, check_first=check_first)


@pytest.fixture(scope="session")
def ansible_lab(lab_support: None, wheelhouse: Path) -> Iterator[AnsibleLab]:
    """One lab for the session whose pair site.yml provisioned once, for test_role.py, its only user:
    the tests of the role's agent engine (the modules after the role and the role after the modules
    among them), then the switch to engine heartbeat and back, share it instead of each building and
    provisioning a lab of their own; they live in one module so that `--dist loadfile` builds it once.

    Hosts server1 (home of the VIP, `lab.vip`/24) and server2 with sshd, a client; engine agent (sysv
    init script: the lab has no systemd), FAST_TIMERS, secret SECRET; `ansible_lab.inventory` puts both
    in group hbvip_pairs with `ansible_lab.vars`. Contract: a test (or, at its teardown, a module-scoped
    fixture such as test_role.py's switch to engine heartbeat) leaves the pair as it found it,
    provisioned with those variables, both hosts up (`ansible_lab.heal()` restores that). The
    provisioning run is `ansible_lab.first` (assert it succeeded where it matters), the `--check --diff`
    run just before it on the fresh hosts `ansible_lab.fresh_check`.
    """
    yield from _provisioned_lab("al", wheelhouse, check_first=True)


@pytest.fixture(scope="session")
def changes_lab(lab_support: None, wheelhouse: Path) -> Iterator[AnsibleLab]:
    """A lab provisioned like `ansible_lab` (without the --check before), for test_role_changes.py, its
    only user: the changes it makes take minutes of Ansible and run beside test_role.py on
    another worker. Its last tests leave the pair changed (see there)."""
    yield from _provisioned_lab("ch", wheelhouse)


@pytest.fixture
def collections(tmp_path: Path) -> Path:
    """ANSIBLE_COLLECTIONS_PATH with hbvip.heartbeat = this checkout (the module tests run it as a
    collection by path, as an operator's playbook directory would)."""
    root = tmp_path / "collections"
    (root / "ansible_collections" / "hbvip").mkdir(parents=True)
    (root / "ansible_collections" / "hbvip" / "heartbeat").symlink_to(REPO)
    return root
