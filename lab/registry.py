"""Registry of live labs in /run/hbvlab, and the one teardown every lab goes through.

Why a registry: several engineers and test runs share one machine. A lab writes its record *before*
it creates anything, so a lab that dies half-way (crash, SIGKILL) can still be removed later by
`python -m lab down`, and `down --all` only ever touches namespaces and directories a lab made.
The same file lock serialises net-number allocation, so parallel runs never get the same 10.99.N.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.systemd import kill_cgroup, remove_cgroup

REGISTRY = Path(os.environ.get("HBVLAB_REGISTRY", "/run/hbvlab"))
AUTO_NETS = range(1, 90)  # 90-99 are left for hand-made experiments


@dataclass
class LabRecord:
    """What a lab made, enough to undo it without the Lab object."""

    prefix: str
    net: int
    namespaces: list[str]
    owner_pid: int | None  # None: detached (`python -m lab up`), alive while its namespaces exist
    remove_paths: list[str] = field(default_factory=list)
    anchor_pids: list[int] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)  # systemd hosts' own cgroups (lab/systemd.py)

    @property
    def file(self) -> Path:
        return REGISTRY / f"{self.prefix}.json"

    def save(self) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.file)

    def is_live(self) -> bool:
        if self.owner_pid is not None:
            return _pid_alive(self.owner_pid)
        return any(namespace_exists(ns) for ns in self.namespaces)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


@contextmanager
def locked() -> Iterator[None]:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    with open(REGISTRY / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def records() -> list[LabRecord]:
    found = []
    for f in sorted(REGISTRY.glob("*.json")):
        try:
            found.append(LabRecord(**json.loads(f.read_text())))
        except (OSError, ValueError, TypeError):
            continue  # half-written by a dying lab; its owner removes or rewrites it
    return found


def claim(record: LabRecord, *, auto_net: bool) -> LabRecord:
    """Register a lab under the lock; pick a free net if asked. Refuses a prefix already in use."""
    with locked():
        live = [r for r in records() if r.is_live()]
        if any(r.prefix == record.prefix for r in live) or any(
            namespace_exists(ns) for ns in record.namespaces
        ):
            raise RuntimeError(f"lab prefix {record.prefix!r} is in use (python -m lab down --prefix)")
        used = {r.net for r in live}
        if auto_net:
            free = [n for n in AUTO_NETS if n not in used]
            if not free:
                raise RuntimeError("no free lab net in 10.99.1-89")
            record.net = free[0]
        elif record.net in used:
            raise RuntimeError(f"net 10.99.{record.net}.0/24 is used by a live lab")
        record.save()
    return record


def _ns_id(path: str) -> tuple[int, int] | None:
    """A namespace's identity (device, inode) from /run/netns/NAME or /proc/PID/ns/KIND; None if gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@contextmanager
def _lab_namespaces(record: LabRecord) -> Iterator[set[tuple[int, int]]]:
    """The net namespaces the record names and the mount namespaces its live anchors hold open.

    Mount namespaces count too: a process that left a host's netns but still sees the host's private
    mounts is the lab's, and it pins those mounts. An anchor pid counts only while it still sits in
    one of the lab's net namespaces (a stale record's pid may have been reused by anyone).
    Each namespace is held open (an fd) while the caller uses the set: the kernel reuses the inode
    number of a namespace that died at once, and `ip netns exec` makes a new mount namespace per
    command, so without the hold a parallel lab's fresh process could match an anchor's dead mount
    namespace and be killed (seen in CI: another lab's client probe SIGKILLed while it started).
    """
    with ExitStack() as held:
        nets = {ns for ns in (_hold(held, f"/run/netns/{name}") for name in record.namespaces) if ns}
        anchors = [pid for pid in record.anchor_pids if _ns_id(f"/proc/{pid}/ns/net") in nets]
        machine = _ns_id("/proc/1/ns/mnt")
        mounts = {ns for ns in (_hold(held, f"/proc/{pid}/ns/mnt") for pid in anchors) if ns and ns != machine}
        yield nets | mounts


def _hold(stack: ExitStack, path: str) -> tuple[int, int] | None:
    """Open a namespace file for the life of `stack` and return its identity; None if it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    stack.callback(os.close, fd)
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _lab_processes(namespaces: set[tuple[int, int]]) -> set[int]:
    """Every live process inside one of `namespaces` (net or mnt): the anchors and all they started."""
    me = os.getpid()
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        if any(_ns_id(f"{entry}/ns/{kind}") in namespaces for kind in ("net", "mnt")):
            if not _is_zombie(int(entry.name)):
                pids.add(int(entry.name))
    return pids


def _signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            try:
                os.waitpid(pid, os.WNOHANG)  # reap if it is our child; harmless otherwise
            except ChildProcessError:
                pass
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                pids.remove(pid)
        time.sleep(0.01)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _end_lab_processes(record: LabRecord, *, grace: float = 0.5, timeout: float = 10) -> list[str]:
    """SIGTERM every process in the lab's namespaces, then SIGKILL and look again until none is left.

    One pass is not enough: a process that forks while the others die (a respawn loop, a daemon
    reacting to its child's death) creates a child between the listing and the kill, and that child
    outlives the lab in a deleted namespace; Heartbeat's media readers/writers were found so, PPid 1,
    after the two-pair role lab. SIGTERM first lets well-behaved processes end on their own.
    """
    with _lab_namespaces(record) as namespaces:
        victims = _lab_processes(namespaces)
        _signal_all(victims, signal.SIGTERM)
        _wait_gone(sorted(victims), timeout=grace)
        deadline = time.monotonic() + timeout
        while victims := _lab_processes(namespaces):
            if time.monotonic() > deadline:
                return [f"processes survived SIGKILL: {sorted(victims)}"]
            _signal_all(victims, signal.SIGKILL)
            _wait_gone(sorted(victims), timeout=1)
    return []


def teardown(record: LabRecord) -> list[str]:
    """Undo everything the record lists; never raises, returns the problems it met.

    Order matters: processes first (they outlive `ip netns del` and pin the private mount
    namespaces; a systemd host's whole cgroup is killed at once, so a container's services outside the
    lab's namespaces die too), then the cgroups, then the namespaces, then the directories (only once no mount can be left on them).
    Every process killed is inside one of this lab's namespaces, so it is ours by construction.
    """
    problems = [f"processes survived cgroup.kill in {cg}" for cg in record.cgroups if not kill_cgroup(Path(cg))]
    problems += _end_lab_processes(record)
    for cg in record.cgroups:
        problems.extend(remove_cgroup(Path(cg)))
    for ns in record.namespaces:
        if namespace_exists(ns):
            res = subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True, text=True)
            if res.returncode != 0:
                problems.append(f"ip netns del {ns}: {res.stderr.strip()}")
    for p in record.remove_paths:
        problems.extend(_remove_tree(Path(p)))
    if not problems:
        record.file.unlink(missing_ok=True)
    return problems


def _remove_tree(path: Path) -> list[str]:
    """rm -rf, but first lazily unmount anything still mounted below it so rm never crosses a mount."""
    if not path.exists():
        return []
    base = str(path.resolve())
    mounted = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4] == base or line.split()[4].startswith(base + "/")
    ]
    for target in sorted(mounted, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    try:
        shutil.rmtree(path)
    except OSError as exc:
        return [f"rm {path}: {exc}"]
    return []
