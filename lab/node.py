"""The simulated machines: a Host (net + mount + UTS namespaces) and the Client (net namespace only).

A host's namespaces are held open by a long-lived *anchor* process (`sleep infinity` started via
`ip netns exec NS unshare --mount --uts --propagation private`); every command then joins them with
`nsenter -t <anchor> -n -m -u`. Without the anchor the private mounts and hostname would vanish
with the last command that used them.
"""
from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Cmd = Sequence[str] | str

# Directories every host gets as plain private dirs (bind mounts of dirs under Host.root), so tests
# can read the agent's config, state and logs from the real filesystem, even after a power loss.
PRIVATE_DIRS = ("/etc/ha.d", "/var/lib/heartbeat", "/var/log", "/run")
# Trees overlaid per host (lower = real tree, upper = the host's own dir): Ansible may write anywhere
# in them without touching the real machine or the other host.
OVERLAY_TREES = ("/etc", "/opt", "/usr/local", "/var", "/root", "/usr/bin")
# Machine-wide killers and power switches, replaced in every host's /usr/bin by a refusing stub:
# Heartbeat's ResourceManager runs `pkill -9 heartbeat` (which would hit the other hosts: there is no
# PID namespace) and `/sbin/reboot -nf` when a stop fails. reboot/halt/shutdown link to systemctl.
REFUSED = ("pkill", "killall", "systemctl")
# CAP_SYS_BOOT is dropped from every host process, so even a direct reboot(2) cannot reach the machine.
NO_REBOOT = ["setpriv", "--bounding-set", "-sys_boot"]


def _argv(cmd: Cmd) -> list[str]:
    return ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """Extra variables are merged over ours: callers want to add PATH bits, not rebuild the env."""
    return None if env is None else {**os.environ, **env}


@dataclass
class Client:
    """The outside world: reaches the hosts and the VIP over the lab bridge; also the Ansible controller."""

    netns: str
    address: str
    mac: str
    iface: str = "eth0"
    address6: str | None = None  # fd99:N::i in a dual-stack lab (`Lab(ipv6=True)`), else None

    def _prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]

    def run(
        self,
        cmd: Cmd,
        *,
        check: bool = True,
        timeout: float | None = 30,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self._prefix() + _argv(cmd),
            check=check,
            timeout=timeout,
            input=input,
            env=_env(env),
            capture_output=True,
            text=not isinstance(input, bytes),
        )

    def spawn(self, cmd: Sequence[str], *, stdout=None, stderr=None, env=None) -> subprocess.Popen:
        return subprocess.Popen(
            self._prefix() + list(cmd), stdout=stdout, stderr=stderr, env=_env(env), start_new_session=True
        )


@dataclass
class Host(Client):
    """One simulated server. `root` holds its private dirs; see `path()` for how files map."""

    name: str = ""
    root: Path = Path()
    extra_ifaces: tuple[tuple[str, str], ...] = ()  # (eth1, its address/64) in a two-network lab
    anchor: subprocess.Popen | None = field(default=None, repr=False)
    _spawned: dict[int, subprocess.Popen] = field(default_factory=dict, repr=False)
    """What we spawned here, by pid, until it is reaped: then the number may be another process's."""

    @property
    def anchor_pid(self) -> int:
        if self.anchor is None:
            raise RuntimeError(f"host {self.name} is not started")
        return self.anchor.pid

    def _prefix(self) -> list[str]:
        return ["nsenter", "-t", str(self.anchor_pid), "-n", "-m", "-u", "--", *NO_REBOOT]

    def path(self, p: str) -> Path:
        """Where host path `p` lives on the real filesystem.

        Paths in PRIVATE_DIRS map to `root` (stable; survives power_loss). Anything else is reached
        through `/proc/<anchor>/root`, which the kernel resolves in the host's mount namespace, so it
        shows the host's merged overlay view (valid while the lab is up).
        """
        p = "/" + p.lstrip("/")
        for d in PRIVATE_DIRS:
            if p == d or p.startswith(d + "/"):
                return self.root / p.lstrip("/")
        return Path(f"/proc/{self.anchor_pid}/root{p}")

    def write(self, p: str, text: str | bytes, mode: int = 0o644) -> Path:
        target = self.path(p)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
        os.chmod(target, mode)
        return target

    def read(self, p: str) -> str:
        return self.path(p).read_text()

    def spawn(self, cmd: Sequence[str], *, stdout=None, stderr=None, env=None) -> subprocess.Popen:
        return self.track(super().spawn(cmd, stdout=stdout, stderr=stderr, env=env))

    def track(self, proc: subprocess.Popen) -> subprocess.Popen:
        """Count `proc` (started in this host by us) as the host's while it runs (see `owns_pid`)."""
        self._spawned[proc.pid] = proc
        return proc

    def spawn_tool(self, cmd: Sequence[str], *, stdout=None, stderr=None) -> subprocess.Popen:
        """A lab measuring tool (lab/_agents.py) on this host; SystemdHost runs it in the network
        namespace only, because its container does not see this machine's /work."""
        return self.spawn(cmd, stdout=stdout, stderr=stderr)

    def owns_pid(self, pid: int) -> bool:
        """A process is this host's when we spawned it here and it still runs (nsenter may not have
        joined yet), or it lives in this host's network namespace. Once one we spawned is reaped, its
        number is free: pids wrap (pid_max is 32768 here) and another lab's process may get it, which
        must never pass for ours (a contender's `kill9` would stop another test's daemon)."""
        proc = self._spawned.get(pid)
        if proc is not None:
            if proc.poll() is None:
                return True
            del self._spawned[pid]
        try:
            return os.readlink(f"/proc/{pid}/ns/net") == os.readlink(f"/proc/{self.anchor_pid}/ns/net")
        except OSError:
            return False

    def kill(self, proc_or_pid: subprocess.Popen | int, sig: int = signal.SIGTERM) -> None:
        """Signal a process of this host; one we spawned that has already ended needs nothing."""
        if isinstance(proc_or_pid, subprocess.Popen) and proc_or_pid.poll() is not None:
            return
        pid = proc_or_pid.pid if isinstance(proc_or_pid, subprocess.Popen) else proc_or_pid
        if pid == self.anchor_pid or not self.owns_pid(pid):
            raise PermissionError(f"pid {pid} is not a process of lab host {self.name}")
        os.kill(pid, sig)
        if isinstance(proc_or_pid, subprocess.Popen) and sig == signal.SIGKILL:
            proc_or_pid.wait(timeout=5)

    def power_loss(self, procs: Sequence[subprocess.Popen | int] = ()) -> None:
        """Make the host a dead machine: SIGKILL `procs`, drop every address but the fixed one, link down.

        Link down (not just removing addresses) is the choice: a powered-off box answers nothing, not
        even on its fixed address, and its peer's heartbeats go nowhere. The extra addresses (the VIP)
        are removed too because a rebooted machine comes back without them.
        """
        for proc in procs:
            self.kill(proc, signal.SIGKILL)
        for iface in (self.iface, *(i for i, _unused in self.extra_ifaces)):
            self.run(["ip", "link", "set", iface, "down"])
        for addr in self.addresses() + self.addresses(6):
            if addr not in (f"{self.address}/24", f"{self.address6}/64"):
                self.run(["ip", "addr", "del", addr, "dev", self.iface])

    def power_on(self) -> None:
        """Undo power_loss: link up with only the fixed address and an empty neighbour table."""
        self.run(["ip", "neigh", "flush", "dev", self.iface], check=False)
        fixed6 = [(self.iface, f"{self.address6}/64")] if self.address6 else []
        for iface in (self.iface, *(i for i, _unused in self.extra_ifaces)):
            self.run(["ip", "link", "set", iface, "up"])
        for iface, address in fixed6 + list(self.extra_ifaces):
            # link down flushed IPv6 addresses (keep_addr_on_down 0); a booted box configures them again
            self.run(["ip", "addr", "replace", address, "dev", iface, "nodad"])
        # Return only when the link really carries traffic again (operstate UP), as a booted box would.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.run(["cat", f"/sys/class/net/{self.iface}/operstate"], check=False).stdout.strip() == "up":
                return
            time.sleep(0.02)

    def has_address(self, address: str) -> bool:
        """Whether `address` (IPv4 or IPv6, no prefix) is configured in the host's network namespace.

        Read from procfs, not `ip`: the tests' holder watches and waits ask this every few ms, and a
        process per question cost ~3 ms of CPU. A local IPv4 address is the `/32 host LOCAL` entry under
        its `|-- ADDRESS` line in fib_trie; an IPv6 one is a line of if_inet6 (its 32 hex digits)."""
        net = Path(f"/proc/{self.anchor_pid}/net")
        if ":" in address:
            digits = ipaddress.IPv6Address(address).exploded.replace(":", "")
            return any(line.split(" ", 1)[0] == digits for line in (net / "if_inet6").read_text().splitlines())
        lines = (net / "fib_trie").read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() == f"|-- {address}":
                for leaf in lines[i + 1:]:
                    if not leaf.strip().startswith("/"):
                        break
                    if leaf.split()[1:3] == ["host", "LOCAL"]:
                        return True
        return False

    def addresses(self, family: int = 4) -> list[str]:
        """IPv4 (or global IPv6) addresses with prefix on the host's interface, e.g. ['10.99.3.1/24',
        '10.99.3.100/24'] or ['fd99:3::1/64', 'fd99:3::100/64']."""
        scope = ["scope", "global"] if family == 6 else []
        out = self.run(["ip", "-o", f"-{family}", "addr", "show", "dev", self.iface, *scope]).stdout
        return [line.split()[3] for line in out.splitlines()]
