"""Where a haresources resource's script lives: resource.d/ first, then the init directory."""

from __future__ import annotations

from pathlib import Path

from hbvip.config.haresources import NATIVE_RESOURCES

DEFAULT_INIT_DIR = Path("/etc/init.d")


def resolve_script(config_dir: Path, name: str, init_dir: Path = DEFAULT_INIT_DIR) -> Path | None:
    """The script Heartbeat would run for resource `name`, or None.

    None means either "native" (IPaddr/IPaddr2, which hbvip runs itself; check
    `name in NATIVE_RESOURCES`) or "not found".
    """
    if name in NATIVE_RESOURCES or "/" in name:
        return None
    for directory in (Path(config_dir) / "resource.d", Path(init_dir)):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None
