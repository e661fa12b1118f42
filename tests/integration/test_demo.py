"""`make demo` as CI runs it: non-interactive, and the timeline a newcomer reads must show the failover.

The demo lab has the fixed prefix `demo` (so `make demo-down` finds it); this test removes it at the end
whatever happened.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEADTIME_S = 1.5  # demo/provision.py TIMERS
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture
def demo_output(lab_support: None) -> Iterator[tuple[subprocess.CompletedProcess, float]]:
    started = time.monotonic()
    try:
        result = subprocess.run(["make", "--no-print-directory", "demo", "DEMO_ARGS=--no-tty"], cwd=REPO,
                                capture_output=True, text=True, timeout=1100, check=False)
        yield result, time.monotonic() - started
    finally:
        subprocess.run([sys.executable, "-m", "demo", "down"], cwd=REPO, capture_output=True, timeout=120, check=False)


def test_make_demo_shows_takeover_and_failback_with_the_agent(demo_output: tuple[subprocess.CompletedProcess, float]) -> None:
    result, seconds = demo_output
    out = result.stdout
    print(out)
    print(f"make demo: {seconds:.0f} s")
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "site.yml done: the pair runs engine agent" in out, "the demo fell back from the agent engine"
    takeover = re.search(r"TAKEOVER: server2 serves the VIP ([\d.]+) s after the power loss", out)
    failback = re.search(r"FAILBACK: server1 serves the VIP again ([\d.]+) s", out)
    assert takeover and failback, out
    assert DEADTIME_S * 0.8 <= float(takeover.group(1)) <= DEADTIME_S + 3
    assert "holders seen by the client: server1 -> server2 -> server1" in out
    assert "make demo-down" in out
    inventory = re.search(r"The demo's inventory: (\S+)\. Run playbooks", out)
    assert inventory, out
    assert Path(inventory.group(1)).is_file()
    for playbook in ("demo/hb_vip_examples.yml -e demo_vip2=", "playbooks/rename_node.yml -e "):
        assert f"ansible-playbook -i {inventory.group(1)} {playbook}" in out, out
    # The modules' command runs as printed (the rename is test_rename's; it would end the demo pair's names).
    command = next(line.split("   #")[0].strip() for line in out.splitlines() if "hb_vip_examples.yml" in line)
    run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"server1\s+: ok=\d+\s+changed=[1-9]", run.stdout), run.stdout[-2000:]
    assert not any(line.startswith("\x1b") for line in out.splitlines()), "--no-tty must print plain lines"
