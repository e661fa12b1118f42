"""Systemd-booted lab hosts: Debian's own systemd as PID 1 in a container per host (issue 16).

Why: almost every host an operator points site.yml at runs systemd, and the unit's sandbox, Type=notify,
Restart=, the journal and `systemctl` only exist there. The classic lab host (sshd as PID 1 in
net + mount + UTS namespaces) stays for the sysv cases.

How one host is made:
- Root file system: an overlay per tree (/etc /usr /var /opt /root /home /srv) whose lower layer is this
  machine's own tree, read-only, and whose upper layer is the host's dir (its "disk"). The machine's tree
  is the same Debian 12 the project installs (scripts/deps.sh), needs no network and no cached image, and
  costs nothing to create; a debootstrap would add minutes and a mirror to every fresh CI machine.
  Trees are overlaid one by one (not "/" at once) so the upper dirs are never inside a lower layer and
  the host does not see /work, /tmp or the machine's /run.
- Before the first boot the upper layer gets the host's own hostname, machine-id, /etc/hosts, an empty
  fstab, the lab's sshd config (listening on the lab address only) and key, and masks for every service
  or timer the image enables that must not run here (keepalived, logd, databases, timers...). Debian's
  heartbeat.service is disabled, not masked: the role's heartbeat engine enables it.
- `systemd-nspawn --boot --register=no --keep-unit --link-journal=no --network-namespace-path=...`
  (plus CAP_NET_ADMIN, which nspawn grants only with a network namespace of its own; this one is the
  host's own lab namespace, so the capability reaches nothing else) runs inside the lab's network
  namespace and a private mount namespace that holds the overlays and a
  tmpfs over /run (nspawn keeps its runtime state there, not in the machine's /run). When that
  namespace's last process ends the overlays are gone too: a crash leaves no mount behind.
- Cgroups: the machine has no systemd, so nothing gives nspawn a unit of its own. Each host gets
  `hbvlab-<prefix>-<host>` at the top of the unified (cgroup2) and the name=systemd hierarchies; the
  wrapper sits in its `ctl` leaf, nspawn in `machine` (where it makes payload/supervisor for itself and
  the container's systemd). `cgroup.kill` on the host's cgroup is the power switch, and the registry
  removes the cgroups at teardown.
- reboot: the container's systemd asks nspawn to exit with 133; the wrapper starts nspawn again on the
  same overlays (same disk) and nspawn mounts a fresh /run and /tmp.

Heartbeat's `pkill -9 heartbeat` and `reboot -nf` act inside the container's PID namespace here, so
these hosts keep the real pkill/systemctl (the classic hosts replace them with refusing stubs).
"""
from __future__ import annotations

import os
import shlex
import stat
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.node import NO_REBOOT, Host

# The trees a systemd host gets from the machine (each one overlay); everything else is nspawn's (/proc,
# /sys, /dev, /run, /tmp), a symlink of the merged-/usr layout, or /root: a fresh, empty home on the
# host's disk, because the machine's /root carries a pyenv whose python3 would come first on root's PATH
# (a venv made with it breaks under ProtectHome=) and no fresh Debian host has that.
ROOT_TREES = ("etc", "usr", "var", "opt", "home", "srv")
USR_LINKS = ("bin", "sbin", "lib", "lib64")
# Enabled by the image but part of what a lab host is: started as usual.
KEEP_ENABLED = frozenset({"ssh.service"})
# Enabled by the image, disabled (not masked) here: the role enables them when asked to.
DISABLE = frozenset({"heartbeat.service"})
# Masked whether or not the image enables them: they act on the real machine or slow the boot.
MASK_ALWAYS = (
    "keepalived.service", "logd.service", "postgresql.service", "mariadb.service", "mysql.service",
    "systemd-timesyncd.service", "getty@tty1.service", "console-getty.service", "e2scrub_reap.service",
    "apt-daily.timer", "apt-daily-upgrade.timer", "systemd-pstore.service", "cron.service",
)
# systemd's exit code for "reboot requested" from a container (nspawn passes it on).
REBOOT_EXIT = 133
CGROUP_PREFIX = "hbvlab-"


def unit_policy(etc: Path = Path("/etc/systemd/system")) -> tuple[list[str], list[str]]:
    """(units to mask, enablement links to hide) for this machine's image: everything it enables beyond
    KEEP_ENABLED is masked, so a database or keepalived installed on the machine never runs in the lab."""
    masks = set(MASK_ALWAYS)
    disable = []
    for link in sorted(etc.glob("*.wants/*")):
        if link.name in KEEP_ENABLED:
            continue
        if link.name in DISABLE:
            disable.append(str(link))
        elif link.suffix in (".service", ".timer", ".socket", ".path"):
            masks.add(link.name)
    return sorted(masks), disable


def nspawn_unavailable() -> str | None:
    """Why systemd hosts cannot be booted here, or None."""
    if not Path("/usr/bin/systemd-nspawn").exists():
        return "systemd-nspawn is missing (apt-get install systemd-container)"
    if not Path("/lib/systemd/systemd").exists():
        return "this machine's tree has no systemd to boot"
    if cgroup_roots() == []:
        return "no cgroup2 or name=systemd hierarchy is mounted"
    return None


def cgroup_roots() -> list[Path]:
    """Mount points of the hierarchies nspawn places a container in: cgroup2 and v1 name=systemd."""
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        mountpoint, fstype, options = fields[4], fields[sep + 1], fields[sep + 3]
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options.split(",")):
            roots.append(Path(mountpoint))
    return list(dict.fromkeys(roots))  # a hierarchy mounted twice is still one cgroup to make


def kill_cgroup(path: Path, timeout: float = 10) -> bool:
    """SIGKILL every process in a cgroup2 subtree at once (the power switch); True once it is empty."""
    kill = path / "cgroup.kill"
    if kill.exists():
        kill.write_text("1")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "populated 0" in (path / "cgroup.events").read_text():
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def remove_cgroup(path: Path) -> list[str]:
    """rmdir a cgroup and everything below it, deepest first (a cgroup dir holds no files to delete)."""
    if not path.is_dir():
        return []
    problems = []
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda e: -e[0].count("/")):
        try:
            os.rmdir(dirpath)
        except OSError as exc:
            problems.append(f"rmdir {dirpath}: {exc.strerror}")
    return problems


def _nspid_is_init(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) >= 2 and ids[-1] == "1"
    except OSError:
        pass
    return False


@dataclass
class SystemdHost(Host):
    """A lab host whose PID 1 is systemd. `anchor` is the wrapper that owns its mounts and reboots it."""

    cgroup: str = ""
    log: Path = Path()
    boots: int = 0
    _leader: int | None = field(default=None, repr=False)

    # where things are ------------------------------------------------------------------------
    @property
    def fs(self) -> Path:
        """The merged root nspawn boots (a mount point inside the wrapper's mount namespace only)."""
        return self.root / "fs"

    def upper(self, p: str) -> Path:
        """Where host path `p` lives on the host's disk (the overlay's upper layer, or /root itself)."""
        tree, _sep, rest = p.strip("/").partition("/")
        if tree == "root":
            return self.fs / p.strip("/")
        if tree not in ROOT_TREES:
            raise ValueError(f"{p} is not on a systemd host's disk ({', '.join(ROOT_TREES)})")
        return self.root / "disk" / tree / "upper" / rest

    @property
    def cgroups(self) -> list[Path]:
        return [root / self.cgroup for root in cgroup_roots()]

    @property
    def leader(self) -> int:
        """PID (in the machine's namespace) of the container's systemd."""
        if self._leader is None or not _nspid_is_init(self._leader):
            raise RuntimeError(f"systemd host {self.name} is not running")
        return self._leader

    def _prefix(self) -> list[str]:
        return ["nsenter", "-t", str(self.leader), "-a", "--", *NO_REBOOT]

    def path(self, p: str) -> Path:
        """Host path `p` as the running container sees it (its mount namespace, fresh /run and /tmp)."""
        return Path(f"/proc/{self.leader}/root/{p.lstrip('/')}")

    def spawn_tool(self, cmd: Sequence[str], *, stdout=None, stderr=None) -> subprocess.Popen:
        """A lab measuring tool in the host's network namespace only: the container has no /work."""
        return self.track(subprocess.Popen(["nsenter", "-t", str(self.anchor_pid), "-n", "--", *cmd],
                                           stdout=stdout, stderr=stderr, start_new_session=True))

    # the disk --------------------------------------------------------------------------------
    def install(self, files: Mapping[str, str | bytes], *, masks: Sequence[str], disable: Sequence[str],
                machine_id: str | None = None) -> None:
        """Write the host's own files and unit masks onto its disk before the first boot."""
        for tree in ROOT_TREES:
            for sub in ("upper", "work"):
                (self.root / "disk" / tree / sub).mkdir(parents=True, exist_ok=True)
            self._like_lower(self.upper(f"/{tree}"), Path("/") / tree)
        self.fs.mkdir(parents=True, exist_ok=True)
        for d in (*ROOT_TREES, "proc", "sys", "dev", "run", "tmp"):
            (self.fs / d).mkdir(exist_ok=True)
        (self.fs / "root").mkdir(mode=0o700, exist_ok=True)
        for link in USR_LINKS:
            if Path("/", link).is_symlink() and not (self.fs / link).is_symlink():
                (self.fs / link).symlink_to(os.readlink(Path("/", link)))
        files = {"/etc/machine-id": (machine_id or uuid.uuid4().hex) + "\n", **files}
        for p, content in files.items():
            self.write_disk(p, content, mode=0o600 if p.endswith(("_key", "authorized_keys")) else 0o644)
        for unit in masks:
            self._make_parents(f"/etc/systemd/system/{unit}")
            link = self.upper(f"/etc/systemd/system/{unit}")
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
        for wants in disable:
            # An overlay whiteout (a 0/0 character device) hides the image's enablement symlink.
            self._make_parents(wants)
            os.mknod(self.upper(wants), stat.S_IFCHR | 0o000, os.makedev(0, 0))
        for unit in KEEP_ENABLED:
            wants = f"/etc/systemd/system/multi-user.target.wants/{unit}"
            if not Path(wants).is_symlink():
                self._make_parents(wants)
                self.upper(wants).symlink_to(f"/lib/systemd/system/{unit}")

    def write_disk(self, p: str, content: str | bytes, mode: int = 0o644) -> Path:
        target = self.upper(p)
        self._make_parents(p)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(target, mode)
        return target

    def _make_parents(self, p: str) -> None:
        """Create upper-layer parents with the lower layer's mode and owner (an upper dir's wins)."""
        parts = Path(p.lstrip("/")).parts[:-1]
        for i in range(2, len(parts) + 1):
            rel = "/" + "/".join(parts[:i])
            self.upper(rel).mkdir(exist_ok=True)
            self._like_lower(self.upper(rel), Path(rel))

    @staticmethod
    def _like_lower(upper: Path, lower: Path) -> None:
        if lower.is_dir():
            st = lower.stat()
            os.chown(upper, st.st_uid, st.st_gid)
            os.chmod(upper, stat.S_IMODE(st.st_mode))

    # power -----------------------------------------------------------------------------------
    def _wrapper(self) -> str:
        disk = self.root / "disk"
        mounts = [
            f"mount -t overlay hbvlab -o lowerdir=/{t},upperdir={disk / t / 'upper'},workdir={disk / t / 'work'}"
            f" {self.fs / t}"
            for t in ROOT_TREES
        ]
        enter = "; ".join(f"echo $$ > {shlex.quote(str(cg / 'machine' / 'cgroup.procs'))}" for cg in self.cgroups)
        nspawn = (
            f"{enter}; exec systemd-nspawn --boot --register=no --keep-unit --link-journal=no"
            f" --network-namespace-path=/proc/$$/ns/net --capability=CAP_NET_ADMIN --resolv-conf=off --timezone=off"
            f" --machine={shlex.quote(self.cgroup)} -D {shlex.quote(str(self.fs))}"
        )
        ctl = "; ".join(f"echo $$ > {shlex.quote(str(cg / 'ctl' / 'cgroup.procs'))}" for cg in self.cgroups)
        return "\n".join([
            "set -e", ctl,
            "mount -t tmpfs -o mode=755 hbvlab /run", *mounts,
            "set +e",
            "while :; do",
            f"  sh -c {shlex.quote(nspawn)}",
            "  rc=$?",
            f"  [ $rc -eq {REBOOT_EXIT} ] || exit $rc",
            "done",
        ])

    def boot(self, timeout: float = 60) -> float:
        """Power on: link up, start the wrapper, wait until systemd says the boot finished; seconds."""
        started = self.start_boot()
        return self.wait_booted(started, timeout)

    def start_boot(self) -> float:
        """Power on without waiting (Lab boots its hosts side by side); returns the start time."""
        started = time.monotonic()
        for cg in self.cgroups:
            for leaf in ("ctl", "machine"):
                (cg / leaf).mkdir(parents=True, exist_ok=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", self.iface, "up"], check=True)
        log = open(self.log, "ab")
        with log:
            self.anchor = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--mount", "--propagation", "private",
                 "sh", "-c", self._wrapper()],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        self._leader = None
        return started

    def wait_booted(self, started: float, timeout: float = 60) -> float:
        self._wait_booted(started + timeout)
        self.boots += 1
        return time.monotonic() - started

    def _find_leader(self, exclude: int | None) -> int | None:
        for cg in self.cgroups:
            for dirpath, _dirs, files in os.walk(cg):
                if "cgroup.procs" not in files:
                    continue
                try:
                    pids = Path(dirpath, "cgroup.procs").read_text().split()
                except OSError:
                    continue
                for pid in map(int, pids):
                    if pid != exclude and _nspid_is_init(pid):
                        return pid
        return None

    def _wait_booted(self, deadline: float, old: int | None = None) -> None:
        """A new PID 1 (not `old`) appears, then `systemctl is-system-running --wait` says the boot is
        over (running or degraded)."""
        said = ""
        while True:
            if self.anchor is not None and self.anchor.poll() is not None:
                raise RuntimeError(f"systemd host {self.name} exited {self.anchor.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"systemd host {self.name} did not boot ({said}): {self.tail()}")
            leader = self._find_leader(exclude=old)
            if leader is not None:
                self._leader = leader
                state = self.run(["systemctl", "is-system-running", "--wait"], check=False,
                                 timeout=max(1.0, deadline - time.monotonic()))
                if state.stdout.strip() in ("running", "degraded"):
                    return
                said = f"is-system-running: {state.stdout.strip()} {state.stderr.strip()}"
            time.sleep(0.05)

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def reboot(self, timeout: float = 60) -> float:
        """`systemctl reboot` inside (an orderly shutdown, the same disk, a fresh /run); seconds until the
        new boot finished."""
        self.run(["systemctl", "reboot"], check=False)
        return self.wait_rebooted(timeout)

    def wait_rebooted(self, timeout: float = 60) -> float:
        """Wait for a reboot asked from inside (systemctl reboot, reboot -nf) to finish; seconds."""
        started = time.monotonic()
        old = self.leader
        deadline = started + timeout
        while _nspid_is_init(old):
            if time.monotonic() > deadline:
                raise TimeoutError(f"systemd host {self.name} did not shut down: {self.tail()}")
            time.sleep(0.02)
        self._wait_booted(deadline, old=old)
        self.boots += 1
        return time.monotonic() - started

    def power_off(self) -> None:
        """Pull the plug: every process of the host dies at once (cgroup.kill), its mounts with the
        wrapper's mount namespace; the link goes down and the VIP with it, as in Host.power_loss. Lab
        tools (probe responders) live on in the network namespace and answer again after boot."""
        for cg in self.cgroups:
            if not kill_cgroup(cg):
                raise RuntimeError(f"processes of {self.name} survived cgroup.kill in {cg}")
        if self.anchor is not None:
            self.anchor.wait(timeout=5)
        self._leader = None
        subprocess.run(["ip", "-n", self.netns, "link", "set", self.iface, "down"], check=True)
        out = subprocess.run(["ip", "-n", self.netns, "-o", "-4", "addr", "show", "dev", self.iface],
                             check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            addr = line.split()[3]
            if addr != f"{self.address}/24":
                subprocess.run(["ip", "-n", self.netns, "addr", "del", addr, "dev", self.iface], check=True)

    def power_loss(self, procs: Sequence[subprocess.Popen | int] = ()) -> None:
        self.power_off()

    def power_on(self) -> None:
        self.boot()
