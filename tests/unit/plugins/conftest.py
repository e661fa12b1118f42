"""Let plain `pytest tests/unit` import this collection as `ansible_collections.hbvip.heartbeat`.

`ansible-test units` runs from an ansible_collections/ tree and sets the import up itself; the
repo's own `make test` runs pytest in the checkout, where a symlinked tree does the same job.
"""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path


def _collection_importable() -> bool:
    try:
        return importlib.util.find_spec("ansible_collections.hbvip.heartbeat") is not None
    except ImportError:
        return False


if not _collection_importable():
    _ROOT = Path(tempfile.mkdtemp(prefix="hbvip-collections-"))
    atexit.register(shutil.rmtree, _ROOT, True)
    (_ROOT / "ansible_collections" / "hbvip").mkdir(parents=True)
    (_ROOT / "ansible_collections" / "hbvip" / "heartbeat").symlink_to(Path(__file__).resolve().parents[3])
    sys.path.insert(0, str(_ROOT))
