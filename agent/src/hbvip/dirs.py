"""Where one node's files are: Heartbeat's directories by default, others for a test or a lab host."""

from __future__ import annotations

from pathlib import Path

from .records import dataclass


@dataclass(frozen=True)
class Paths:
    """Where one node's files live (Heartbeat's places by default)."""
    config_dir: Path = Path("/etc/ha.d")
    state_dir: Path = Path("/var/lib/heartbeat")
    run_dir: Path = Path("/run/hbvip")
    init_dir: Path = Path("/etc/init.d")

    @property
    def restart_record(self) -> Path:
        """What an agent restarting in place leaves for the next one (hbvip.inplace)."""
        return self.run_dir / "handover.json"
