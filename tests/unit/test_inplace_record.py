"""The handover record file of a restart in place (hbvip.inplace): root-only, read once, never trusted
when someone else could have written it."""

from __future__ import annotations

import os
import stat

from hbvip.cluster import Hold
from hbvip.cluster.inplace import RestartRecord
from hbvip.inplace import take_record, write_record

RECORD = RestartRecord(node="server1", peer="server2", generation=5, seq=41, written_at=1000.0, max_age=10.0,
                       held=Hold.ALL, failed=Hold.NONE, peer_held=Hold.NONE, peer_stable=True, needs_failback=True,
                       peer_status="active", peer_hg=7, peer_max_seq=90, peer_dt=None, peer_uuid="",
                       groups=("a", "b"), version="1.0")


def test_written_0600_read_back_once(tmp_path):
    path = write_record(tmp_path / "handover.json", RECORD)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert take_record(path) == (RECORD, None)
    assert not path.exists()
    assert take_record(path) == (None, None)


def test_a_record_others_could_write_is_refused_and_removed(tmp_path):
    path = write_record(tmp_path / "handover.json", RECORD)
    os.chmod(path, 0o644)
    record, why = take_record(path)
    assert record is None and "mode 644" in why and not path.exists()


def test_garbage_is_refused_and_removed(tmp_path):
    path = tmp_path / "handover.json"
    path.write_text("{not json")
    os.chmod(path, 0o600)
    record, why = take_record(path)
    assert record is None and str(path) in why and not path.exists()
