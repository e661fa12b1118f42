"""The demo lab and its provisioning: the same site.yml a user runs, over ssh, on a built-in inventory."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lab import Lab, registry

PREFIX = "demo"
HOSTS = ("server1", "server2")
REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "site.yml"
# Shorter than the seed's (keepalive 1 s, deadtime 5 s) so the timeline is brisk; still the same rules.
TIMERS = {
    "heartbeat_vip_keepalive_ms": 250,
    "heartbeat_vip_warntime_ms": 750,
    "heartbeat_vip_deadtime_ms": 1500,
    "heartbeat_vip_initdead_ms": 3000,
}
SECRET = "demo-secret-not-for-production"
_TASK = re.compile(r"^TASK \[(?:[^:\]]*: )?(.*)\]")


def tear_down_previous() -> bool:
    """Remove a demo lab left by an earlier run; True when there was one."""
    previous = [r for r in registry.records() if r.prefix == PREFIX]
    for record in previous:
        problems = registry.teardown(record)
        if problems:
            raise RuntimeError("could not remove the previous demo lab: " + "; ".join(problems))
    return bool(previous)


def build_lab() -> Lab:
    """Detached: the lab outlives this process so the user can look around; teardown is by prefix."""
    lab = Lab(PREFIX, None, HOSTS, ssh=True, detached=True)
    lab.start()
    return lab


def wheelhouse(lab: Lab) -> Path:
    """What the controller's `pip wheel ./agent` needs, fetched here in the root namespace: the
    controller runs in the lab's client namespace, which has no route to a package index."""
    dest = lab.dir / "wheelhouse"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "--dest", str(dest),
         "pyroute2>=0.7.12", "setuptools>=68", "wheel"],
        check=True, timeout=300, capture_output=True,
    )
    return dest


def inventory(lab: Lab, engine: str) -> Path:
    pair_vars: dict[str, object] = {
        "heartbeat_vip_engine": engine,
        "heartbeat_vip_vip": {"address": lab.vip, "prefix": lab.prefix_len},
        "heartbeat_vip_auth_secret": SECRET,
        **TIMERS,
    }
    if engine == "agent":
        pair_vars["heartbeat_vip_agent_wheel_find_links"] = str(wheelhouse(lab))
    return lab.write_inventory(lab.dir / "inventory.yml", group="hbvip_pairs", extra_vars=pair_vars)


def run_site(lab: Lab, engine: str, on_task: Callable[[str], None], timeout: float = 600) -> tuple[int, Path]:
    """ansible-playbook site.yml from the client namespace; reports each task name as it starts.

    Returns the exit code and the full log (kept in the lab dir for a failed run's post-mortem).
    """
    assert lab.client is not None
    log = lab.dir / "site.log"
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_PIPELINING": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PYTHONUNBUFFERED": "1",
    }
    cmd = ["ansible-playbook", "-i", str(inventory(lab, engine)), str(SITE)]
    with log.open("w", buffering=1) as out:
        proc = lab.client.spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = raw.decode(errors="replace")
                out.write(line)
                match = _TASK.match(line)
                if match:
                    on_task(match.group(1))
            code = proc.wait(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return code, log


def failure_excerpt(log: Path, lines: int = 25) -> str:
    """The lines of a failed run worth reading first: the fatal ones, else the tail."""
    text = log.read_text().splitlines()
    fatal = [line for line in text if line.startswith(("fatal:", "failed:", "ERROR!"))]
    return "\n".join(line[:300] for line in (fatal or text)[-lines:])
