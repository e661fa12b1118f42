"""sshd per lab host and the controller side (key pair, Ansible inventory).

Why real sshd: the role is tested the way operators run it, Ansible over ssh to each machine. Each
sshd runs inside its host's namespaces with its own host key and config, so a session lands in that
host's private /etc, /root, /var... and nowhere else. Login: root, by the lab's key only.
"""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.node import Host

HOST_KEY = "/etc/ssh/lab_host_ed25519_key"
CONFIG = "/etc/ssh/sshd_lab_config"
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"


def make_client_key(ssh_dir: Path) -> Path:
    ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ssh_dir / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hbvlab", "-f", str(key)], check=True
    )
    return key


def sshd_config(host: Host) -> str:
    return "\n".join(
        [
            "Port 22",
            f"ListenAddress {host.address}",
            f"HostKey {HOST_KEY}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "UseDNS no",
            "PidFile /run/sshd.pid",
            "AuthorizedKeysFile .ssh/authorized_keys",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            "",
        ]
    )


def start_sshd(host: Host, public_key: str) -> subprocess.Popen:
    """Give the host its own host key, config and authorized key, start sshd, wait until it listens."""
    host.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", HOST_KEY])
    host.write(CONFIG, sshd_config(host))
    host.run(["install", "-d", "-m", "700", "/root/.ssh", "/run/sshd"])
    host.write("/root/.ssh/authorized_keys", public_key, mode=0o600)
    log = open(host.path("/var/log/sshd.log"), "ab")
    with log:
        proc = host.spawn(
            ["/usr/sbin/sshd", "-D", "-e", "-f", CONFIG, "-o", f"ListenAddress={host.address}"],
            stdout=log,
            stderr=log,
        )
    _wait_listening(host, 22, proc)
    return proc


def _wait_listening(host: Host, port: int, proc: subprocess.Popen, timeout: float = 5) -> None:
    """Poll the host's own TCP table (/proc/<pid>/net is per network namespace): no subprocesses."""
    needle = f":{port:04X} 00000000:0000 0A"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in Path(f"/proc/{host.anchor_pid}/net/tcp").read_text():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"sshd on {host.name} exited: {host.read('/var/log/sshd.log')[-500:]}")
        time.sleep(0.01)
    raise TimeoutError(f"sshd on {host.name} not listening after {timeout}s")


def target(host: Host, key: Path, control_dir: Path) -> dict[str, object]:
    """Ansible connection variables for one host.

    `ansible_control_path_dir` is per lab: Ansible's ssh multiplexing sockets are keyed by address,
    and two labs may reuse an address, so a shared ~/.ansible/cp could route a session to the wrong lab.
    """
    return {
        "ansible_host": host.address,
        "ansible_port": 22,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": SSH_COMMON_ARGS,
        "ansible_control_path_dir": str(control_dir),
        "ansible_python_interpreter": "/usr/bin/python3",
    }


def inventory(
    groups: Mapping[str, Sequence[Host]],
    key: Path,
    control_dir: Path,
    group_vars: Mapping[str, Mapping[str, object]],
) -> str:
    """A YAML inventory (written as JSON, which YAML accepts) so extra vars keep their types."""
    children = {
        name: {
            "hosts": {h.name: target(h, key, control_dir) for h in members},
            "vars": dict(group_vars.get(name, {})),
        }
        for name, members in groups.items()
    }
    return json.dumps({"all": {"children": children}}, indent=2) + "\n"
