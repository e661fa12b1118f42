"""Why the demo cannot run on this machine, in words a newcomer can act on — before anything is built."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def problems() -> list[str]:
    """Every reason the demo would fail half-way, so the user fixes them all at once."""
    if os.geteuid() != 0:
        return ["the demo needs root: it creates network namespaces and bind mounts (run: sudo make demo)"]
    found = []
    missing = [tool for tool in ("ip", "nsenter", "unshare", "sshd") if _which(tool) is None]
    if missing:
        found.append(f"missing commands: {', '.join(missing)} (make deps installs them)")
    else:
        probe = subprocess.run(["unshare", "--net", "--mount", "--uts", "true"], check=False, capture_output=True,
                               text=True)
        if probe.returncode != 0:
            found.append(
                "network namespaces are unavailable here (a container without CAP_SYS_ADMIN?): "
                + (probe.stderr.strip() or f"unshare exited {probe.returncode}")
            )
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        found.append(f"ansible-playbook is not next to {sys.executable} (run the demo with `make demo`)")
    return found


def _which(tool: str) -> str | None:
    """sshd lives in /usr/sbin, which a non-login root shell may lack on PATH."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
