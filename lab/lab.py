"""The Lab: hosts and a client on one bridge, each in namespaces of its own, always torn down.

Topology for prefix P, net N:
  P-br      bridge namespace, bridge br0, one veth port per machine (v<name>)
  P-<host>  host namespaces: eth0 = 10.99.N.<i>, MAC 02:99:<N>:00:00:<i>, own mount + UTS namespace
  P-client  client/controller namespace: eth0 = 10.99.N.200; the VIP is 10.99.N.100
Veths are created inside the bridge namespace and moved straight into their host's, so interface names
never meet in the root namespace and parallel labs cannot collide there.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab import registry, ssh
from lab.node import OVERLAY_TREES, PRIVATE_DIRS, REFUSED, Client, Host
from lab.probe import ArpWatch, Probe, agent_cmd, stop_proc, wait_ready
from lab.systemd import CGROUP_PREFIX, SystemdHost, unit_policy

CLIENT_INDEX = 200
VIP_INDEX = 100
# A fresh install's state files are the host's own, never copied from the real machine.
_NOT_SEEDED = ("hb_uuid", "hb_generation", "delhostcache", "hostcache")


_REFUSING_STUB = """#!/bin/sh
echo "hbvlab: $0 refused inside a lab host (it would act on the whole machine)" >&2
exit 1
"""


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], check=False, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")


class Lab:
    """Context manager: `with Lab(prefix="x") as lab: ...`; `__exit__` always tears everything down."""

    prefix_len = 24

    def __init__(
        self,
        prefix: str = "hbv",
        net: int | None = 0,
        hosts: Sequence[str] = ("server1", "server2"),
        *,
        ssh: bool = False,
        workdir: Path | None = None,
        detached: bool = False,
        systemd: bool = False,
    ):
        """net=None picks a free 10.99.N under the registry lock; detached=True (CLI `up`) leaves the
        lab running after this process exits, until `python -m lab down`. systemd=True boots every host
        with systemd as PID 1 (lab/systemd.py), reached by ssh like a real machine (implies ssh)."""
        if len(hosts) > 99:
            raise ValueError("at most 99 hosts")
        self.prefix = prefix
        self.net = net if net is not None else 0
        self._auto_net = net is None
        self._host_names = tuple(hosts)
        self._ssh = ssh or systemd
        self._systemd = systemd
        self._own_dir = workdir is None
        self._workdir = workdir
        self._detached = detached
        self.dir = Path()
        self.hosts: dict[str, Host] = {}
        self.client: Client | None = None
        self.ssh_key: Path | None = None
        self._record: registry.LabRecord | None = None
        self._counter = itertools.count()
        self.boot_seconds: dict[str, float] = {}

    # addresses -------------------------------------------------------------------------------
    def addr(self, index: int) -> str:
        return f"10.99.{self.net}.{index}"

    def mac(self, index: int) -> str:
        return f"02:99:{self.net:02x}:00:00:{index:02x}"

    @property
    def vip(self) -> str:
        return self.addr(VIP_INDEX)

    @property
    def bridge_ns(self) -> str:
        return f"{self.prefix}-br"

    @staticmethod
    def now() -> float:
        """The clock probe and ARP timestamps use (CLOCK_MONOTONIC, shared by all namespaces)."""
        return time.monotonic()

    # lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        namespaces = [self.bridge_ns, f"{self.prefix}-client"] + [
            f"{self.prefix}-{h}" for h in self._host_names
        ]
        if self._own_dir:
            self.dir = Path(tempfile.mkdtemp(prefix=f"hbvlab-{self.prefix}-"))
        else:
            self.dir = Path(self._workdir).resolve() / f"lab-{self.prefix}"
            if any(self.dir.is_relative_to(t) for t in OVERLAY_TREES):
                raise ValueError(f"workdir {self.dir} is inside an overlaid tree {OVERLAY_TREES}")
        record = registry.LabRecord(
            prefix=self.prefix,
            net=self.net,
            namespaces=namespaces,
            owner_pid=None if self._detached else os.getpid(),
            remove_paths=[str(self.dir)],
        )
        try:
            self._record = registry.claim(record, auto_net=self._auto_net)
        except BaseException:
            if self._own_dir:
                shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.net = self._record.net
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Tear down (idempotent). Raises only after everything was attempted."""
        if self._record is None:
            return
        record, self._record = self._record, None
        for host in self.hosts.values():
            if host.anchor is not None and host.anchor.pid not in record.anchor_pids:
                record.anchor_pids.append(host.anchor.pid)
        problems = registry.teardown(record)
        for host in self.hosts.values():
            if host.anchor is not None:
                host.anchor.poll()
        if problems:
            raise RuntimeError("lab teardown incomplete: " + "; ".join(problems))

    # building --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _ip("netns", "add", self.bridge_ns)
        self._quiet_netns(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        self.client = Client(
            netns=f"{self.prefix}-client", address=self.addr(CLIENT_INDEX), mac=self.mac(CLIENT_INDEX)
        )
        self._plug(self.client, "vclient")
        if self._systemd:
            self._build_systemd_hosts()
            return
        for i, name in enumerate(self._host_names, start=1):
            host = Host(
                netns=f"{self.prefix}-{name}",
                address=self.addr(i),
                mac=self.mac(i),
                name=name,
                root=self.dir / "hosts" / name,
            )
            self.hosts[name] = host
            self._plug(host, f"v{name}"[:15])
            self._start_anchor(host)
        for host in self.hosts.values():
            self._make_private_views(host)
        if self._ssh:
            self.ssh_key = ssh.make_client_key(self.dir / "ssh")
            (self.dir / "ssh" / "cp").mkdir(exist_ok=True)
            public = self.ssh_key.with_suffix(".pub").read_text()
            for host in self.hosts.values():
                ssh.start_sshd(host, public)

    def _build_systemd_hosts(self) -> None:
        """Plug, install and boot systemd hosts; their cgroups are in the record before they exist."""
        assert self._record is not None
        self.ssh_key = ssh.make_client_key(self.dir / "ssh")
        (self.dir / "ssh" / "cp").mkdir(exist_ok=True)
        public = self.ssh_key.with_suffix(".pub").read_text()
        masks, disable = unit_policy()
        for i, name in enumerate(self._host_names, start=1):
            host = SystemdHost(
                netns=f"{self.prefix}-{name}",
                address=self.addr(i),
                mac=self.mac(i),
                name=name,
                root=self.dir / "hosts" / name,
                cgroup=f"{CGROUP_PREFIX}{self.prefix}-{name}",
                log=self.dir / f"{name}.console.log",
            )
            self.hosts[name] = host
            self._record.cgroups.extend(str(cg) for cg in host.cgroups)
            self._record.save()
            self._plug(host, f"v{name}"[:15])
        for name, host in self.hosts.items():
            key = self.dir / "ssh" / f"host_{name}"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
            host.install({
                "/etc/hostname": name + "\n",
                "/etc/hosts": self._hosts_file(host),
                "/etc/fstab": "# hbvlab host: nothing to mount\n",
                "/etc/ssh/sshd_config": ssh.sshd_config(host),
                ssh.HOST_KEY: key.read_bytes(),
                ssh.HOST_KEY + ".pub": key.with_suffix(".pub").read_bytes(),
                "/root/.ssh/authorized_keys": public,
            }, masks=masks, disable=disable)
        started = {name: host.start_boot() for name, host in self.hosts.items()}
        for host in self.hosts.values():
            self._record.anchor_pids.append(host.anchor_pid)
        self._record.save()
        self.boot_seconds = {name: host.wait_booted(started[name]) for name, host in self.hosts.items()}

    def _quiet_netns(self, ns: str) -> None:
        """IPv6 off (no DAD delays, no stray traffic) before any interface arrives; loopback up."""
        subprocess.run(
            ["ip", "netns", "exec", ns, "sh", "-c",
             "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
             " && ip link set lo up"],
            check=True, capture_output=True,
        )

    def _plug(self, node: Client, port: str) -> None:
        _ip("netns", "add", node.netns)
        self._quiet_netns(node.netns)
        _ip("-n", self.bridge_ns, "link", "add", port, "type", "veth", "peer", "name", node.iface,
            "netns", node.netns)
        _ip("-n", node.netns, "link", "set", node.iface, "address", node.mac)
        _ip("-n", node.netns, "addr", "add", f"{node.address}/{self.prefix_len}", "dev", node.iface)
        _ip("-n", node.netns, "link", "set", node.iface, "up")
        _ip("-n", self.bridge_ns, "link", "set", port, "master", "br0", "up")

    def _start_anchor(self, host: Host) -> None:
        host.anchor = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--uts", "--propagation",
             "private", "sleep", "infinity"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self._record is not None
        self._record.anchor_pids.append(host.anchor.pid)
        self._record.save()
        deadline = time.monotonic() + 5
        while Path(f"/proc/{host.anchor.pid}/comm").read_text().strip() != "sleep":
            if host.anchor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anchor for {host.name} did not start")
            time.sleep(0.002)

    def _make_private_views(self, host: Host) -> None:
        self._seed_private_dirs(host)
        script = ["set -e"]
        for tree in OVERLAY_TREES:
            if not Path(tree).is_dir():
                continue
            upper, work = host.root / ".overlay" / tree.strip("/") / "upper", host.root / ".overlay" / tree.strip("/") / "work"
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            script.append(
                f"mount -t overlay hbvlab -o lowerdir={tree},upperdir={upper},workdir={work} {tree}"
            )
        for d in PRIVATE_DIRS:
            script.append(f"mkdir -p {d} && mount --bind {host.root / d.lstrip('/')} {d}")
        script.append(f"hostname {host.name}")
        for tool in REFUSED:
            script.append(f"rm -f /usr/bin/{tool} && printf '%s' '{_REFUSING_STUB}' > /usr/bin/{tool}"
                          f" && chmod 755 /usr/bin/{tool}")
        host.run("\n".join(script))
        host.write("/etc/hostname", host.name + "\n")
        host.write("/etc/hosts", self._hosts_file(host))

    def _seed_private_dirs(self, host: Host) -> None:
        """Start like a fresh install: the packaged /etc/ha.d (resource.d/IPaddr...), an empty state dir,
        /var/log's directory skeleton (tools expect their log dirs), an empty /run."""
        ignore = shutil.ignore_patterns(*_NOT_SEEDED)
        for d in ("/etc/ha.d", "/var/lib/heartbeat"):
            dest = host.root / d.lstrip("/")
            if Path(d).is_dir():
                shutil.copytree(d, dest, symlinks=True, ignore=ignore)
            else:
                dest.mkdir(parents=True)
        for sub in Path("/var/log").rglob("*"):
            if sub.is_dir() and not sub.is_symlink():
                (host.root / "var/log" / sub.relative_to("/var/log")).mkdir(parents=True, exist_ok=True)
        (host.root / "var/log").mkdir(parents=True, exist_ok=True)
        for d in ("run/lock", "run/sshd"):
            (host.root / d).mkdir(parents=True)

    def _hosts_file(self, host: Host) -> str:
        lines = ["127.0.0.1\tlocalhost"]
        lines += [f"{h.address}\t{h.name}" for h in self.hosts.values()]
        assert self.client is not None
        lines.append(f"{self.client.address}\tclient")
        return "\n".join(lines) + "\n"

    # measuring -------------------------------------------------------------------------------
    def _node(self, host: str | Host) -> Host:
        return host if isinstance(host, Host) else self.hosts[host]

    def probe(self, port: int = 5405, interval: float = 0.01) -> Probe:
        """Start a responder on every host and the prober (to VIP:port) on the client."""
        assert self.client is not None
        out = self.dir / f"probe-{next(self._counter)}.log"
        responders = []
        stoppers = []
        try:
            for host in self.hosts.values():
                proc = host.spawn_tool(agent_cmd("respond", port, host.name))
                responders.append((host, proc))
                stoppers.append(lambda p=proc: stop_proc(p))
            for host, proc in responders:
                _wait_udp_bound(host, port, proc)
            prober = self.client.spawn(agent_cmd("probe", self.vip, port, interval, out))
            wait_ready(out, prober, "prober")
        except BaseException:
            for stop in stoppers:
                stop()
            raise
        return Probe(out, prober, stoppers)

    def arpwatch(self) -> ArpWatch:
        assert self.client is not None
        out = self.dir / f"arp-{next(self._counter)}.log"
        proc = self.client.spawn(agent_cmd("arpwatch", self.client.iface, out))
        wait_ready(out, proc, "arpwatch")
        return ArpWatch(out, proc)

    def client_neigh(self, ip: str) -> str | None:
        assert self.client is not None
        out = self.client.run(["ip", "-j", "neigh", "show", ip]).stdout
        entries = json.loads(out or "[]")
        return next((e["lladdr"] for e in entries if e.get("lladdr")), None)

    # ansible ---------------------------------------------------------------------------------
    def _require_ssh(self) -> Path:
        if self.ssh_key is None:
            raise RuntimeError("this lab was made without ssh=True")
        return self.ssh_key

    def ssh_target(self, host: str | Host) -> dict[str, object]:
        return ssh.target(self._node(host), self._require_ssh(), self.dir / "ssh" / "cp")

    def write_inventory(
        self,
        path: Path,
        group: str = "pair",
        extra_vars: Mapping[str, object] | None = None,
        *,
        groups: Mapping[str, Sequence[str]] | None = None,
        group_vars: Mapping[str, Mapping[str, object]] | None = None,
    ) -> Path:
        """Write a YAML inventory. Default: one `group` with all hosts and `extra_vars` as its vars;
        `groups`/`group_vars` describe several (e.g. two pairs of a four-host lab). Use a .yml path."""
        members = groups if groups is not None else {group: list(self.hosts)}
        gvars = dict(group_vars or {})
        if groups is None and extra_vars:
            gvars[group] = extra_vars
        text = ssh.inventory(
            {g: [self.hosts[h] for h in names] for g, names in members.items()},
            self._require_ssh(), self.dir / "ssh" / "cp", gvars,
        )
        path = Path(path)
        path.write_text(text)
        return path

    def run_controller(self, cmd: Sequence[str] | str, **kw: object) -> subprocess.CompletedProcess:
        """Run e.g. ansible-playbook in the client namespace (the root namespace cannot reach 10.99.x.x);
        this interpreter's bin dir (the venv with ansible) comes first on PATH."""
        assert self.client is not None
        env = {
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            **dict(kw.pop("env", None) or {}),  # type: ignore[call-overload]
        }
        return self.client.run(cmd, env=env, **kw)  # type: ignore[arg-type]


def _wait_udp_bound(host: Host, port: int, proc: subprocess.Popen, timeout: float = 5) -> None:
    needle = f":{port:04X} 00000000:0000 07"
    deadline = time.monotonic() + timeout
    while needle not in Path(f"/proc/{host.anchor_pid}/net/udp").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"probe responder on {host.name} did not start")
        time.sleep(0.005)
