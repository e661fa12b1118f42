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
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

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


def _netns_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], check=False, capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


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


def teardown(record: LabRecord) -> list[str]:
    """Undo everything the record lists; never raises, returns the problems it met.

    Order matters: processes first (they outlive `ip netns del` and pin the private mount
    namespaces), then the namespaces, then the directories (only once no mount can be left on them).
    Every process killed is inside one of this lab's namespaces, so it is ours by construction.
    """
    problems: list[str] = []
    victims = set(record.anchor_pids)
    for ns in record.namespaces:
        if namespace_exists(ns):
            victims.update(_netns_pids(ns))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _wait_gone(sorted(victims), timeout=5)
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
