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

from ansible_lab import FAST_TIMERS, SECRET, AnsibleLab
from ansible_lab import wheelhouse  # noqa: F401 pylint: disable=unused-import  # a fixture, used by name
from lab import Lab
from pair import Pair

_LAB_FIXTURES = {"lab", "lab_factory", "lab_support", "lab_prefix", "ansible_lab"}
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


@pytest.fixture(scope="session")
def ansible_lab(lab_support: None, wheelhouse: Path) -> Iterator[AnsibleLab]:
    """One lab for the session whose pair site.yml provisioned once: the tests of the role, the modules
    and the rename share it instead of each building and provisioning a lab of their own.

    Hosts server1 (home of the VIP, `lab.vip`/24) and server2 with sshd, a client; engine agent (sysv
    init script: the lab has no systemd), FAST_TIMERS, secret SECRET; `ansible_lab.inventory` puts both
    in group hbvip_pairs with `ansible_lab.vars`. Contract: a test leaves the pair as it found it,
    provisioned with those variables, both hosts up (`ansible_lab.heal()` restores that). The
    provisioning run is `ansible_lab.first` (assert it succeeded where it matters).
    """
    with Lab(prefix=f"al{os.getpid()}", net=None, hosts=("server1", "server2"), ssh=True) as lab:
        variables: dict[str, object] = {
            "heartbeat_vip_engine": "agent",
            "heartbeat_vip_vip": {"address": lab.vip, "prefix": 24},
            "heartbeat_vip_auth_secret": SECRET,
            "heartbeat_vip_agent_wheel_find_links": str(wheelhouse),
            **FAST_TIMERS,
        }
        inventory = lab.write_inventory(lab.dir / "inventory.yml", group="hbvip_pairs", extra_vars=variables)
        yield AnsibleLab(lab, inventory, variables)
