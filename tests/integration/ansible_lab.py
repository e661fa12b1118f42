"""Running site.yml and the collection's modules against a lab over ssh, and reading what Ansible said.

The shared, provisioned lab itself is the `ansible_lab` fixture of conftest.py; this module holds what
it and the tests use: the base variables, `playbook()`, the recap and the per-task change list.
"""
from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab import Host, Lab
from lab.probe import Probe
from pair import status_of

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "site.yml"
SECRET = "labsecret-0123"
# Short timers keep the tests quick; Heartbeat and the agent accept milliseconds.
FAST_TIMERS = {
    "heartbeat_vip_keepalive_ms": 200,
    "heartbeat_vip_warntime_ms": 500,
    "heartbeat_vip_deadtime_ms": 1000,
    "heartbeat_vip_initdead_ms": 1000,
}
#: The files the role writes in /etc/ha.d and their modes (identical on both nodes of a pair).
CONFIG_FILES = {"ha.cf": 0o644, "haresources": 0o644, "authkeys": 0o600, "resource.d/failback.sh": 0o755,
                "hbvip.cf": 0o600}
#: Where the role's agent engine installs the `hbvip` command on a host.
HBVIP = "/opt/hbvip/venv/bin/hbvip"
ANSIBLE_ENV = {"ANSIBLE_PIPELINING": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "8"}


def playbook(lab: Lab, inventory: Path, *args: str, play: Path = SITE, env: Mapping[str, str] | None = None,
             timeout: float = 400) -> subprocess.CompletedProcess:
    """ansible-playbook from the lab's controller; a run that hangs comes back failed, with its output."""
    cmd = ["ansible-playbook", "-i", str(inventory), str(play), *args]
    try:
        return lab.run_controller(cmd, check=False, timeout=timeout, env={**ANSIBLE_ENV, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return subprocess.CompletedProcess(cmd, -9, out + "\n[timed out]", "")


def recap(result: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host, e.g. {'server1': {'ok': 30, 'changed': 0, 'failed': 0, ...}}."""
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
            for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", result.stdout, re.M)}


def changed_tasks(result: subprocess.CompletedProcess) -> dict[str, list[str]]:
    """Per host, the tasks (and loop items) that reported `changed`, in order: what check mode must predict."""
    changes: dict[str, list[str]] = {}
    task = ""
    for line in result.stdout.splitlines():
        header = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.*)\] \**$", line)
        if header:
            task = header.group(1)
            continue
        change = re.match(r"^changed: \[([^\]]+?)(?: -> [^\]]+)?\](?: => \(item=(.*)\))?", line)
        if change:
            host, item = change.groups()
            changes.setdefault(host, []).append(task + (f" ({item})" if item else ""))
    return changes


def pair_vars(lab: Lab, vip: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "heartbeat_vip_engine": "heartbeat",
        "heartbeat_vip_vip": {"address": vip or lab.vip, "prefix": 24},
        "heartbeat_vip_auth_secret": SECRET,
        **FAST_TIMERS,
        **extra,
    }


def heartbeat_pids(host: Host) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == "heartbeat" and host.owns_pid(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def config_bytes(host: Host) -> dict[str, bytes]:
    return {name: host.path(f"/etc/ha.d/{name}").read_bytes() for name in CONFIG_FILES}


@contextmanager
def serving_probe(lab: Lab, port: int = 5405, target: str | None = None) -> Iterator[Probe]:
    """The client probing the lab's VIP (or `target`) every 10 ms, already answered by server1; stopped
    at the end."""
    probe = lab.probe(port, 0.01, target)
    try:
        probe.wait_for("server1", timeout=15)
        yield probe
    finally:
        probe.stop()


def agent_pid(host: Host) -> int:
    """The pid of the agent the role's init script started (its pidfile)."""
    return int(host.read("/run/hbvip.pid").strip())


def agent_status(host: Host) -> dict:
    """`hbvip status --json` of the agent the role started on a provisioned host (pair.status_of)."""
    return status_of(host)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of what `pip wheel ./agent` needs (pyroute2, the build backend), for
    heartbeat_vip_agent_wheel_find_links: fetched here, where an index answers, because the lab's
    controller namespace has no route to one. A fixture of conftest.py. Under pytest-xdist every worker
    asks for it; the first fetches into the run's shared temp dir, the others wait for it (a lock)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent          # .../pytest-N/popen-gwK -> .../pytest-N, shared by the workers
    dest = root / "wheelhouse"
    with open(root / "wheelhouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dest / ".complete").exists():
            dest.mkdir(exist_ok=True)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "--dest", str(dest),
                 "pyroute2>=0.7.12", "setuptools>=68", "wheel"],
                check=True, timeout=300,
            )
            (dest / ".complete").touch()
    return dest


class AnsibleLab:
    """A two-host lab (server1, server2, a client) whose pair site.yml provisioned over ssh.

    `lab`, `inventory` (group hbvip_pairs, its vars `vars`), `fresh_check` (with check_first: site.yml
    --check --diff on the fresh hosts just before, else None), `first` (the provisioning run) and its
    `seconds`. `playbook(*args)` runs site.yml (or `play=`) against it. A test that leaves the pair
    otherwise than it found it (a host powered off, other variables applied) calls `heal()`.
    """

    def __init__(self, lab: Lab, inventory: Path, variables: dict[str, object], *, check_first: bool = False):
        self.lab, self.inventory, self.vars = lab, inventory, variables
        self.fresh_check = self.playbook("--check", "--diff") if check_first else None
        started = time.monotonic()
        self.first = self.playbook()
        self.seconds = time.monotonic() - started

    def playbook(self, *args: str, play: Path = SITE, inventory: Path | None = None,
                 env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        return playbook(self.lab, inventory or self.inventory, *args, play=play, env=env)

    def heal(self) -> None:
        """Power every host on and apply site.yml with the lab's own variables again."""
        for host in self.lab.hosts.values():
            host.power_on()
        assert_ok(self.playbook())
