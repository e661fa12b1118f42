"""hb_uuid and hb_generation in Heartbeat's byte formats, so a node keeps its identity across
a switch between Heartbeat and hbvip."""
from __future__ import annotations

import uuid

import pytest

from hbvip.wire.identity import (
    format_generation,
    increment_generation,
    load_or_create_uuid,
    record_uuid_host,
    uuid_host,
)


def test_generation_file_is_heartbeats_16_byte_format_and_goes_up_by_one(tmp_path):
    (tmp_path / "hb_generation").write_bytes(b"     1795636442\n")
    assert increment_generation(tmp_path) == 1795636443
    assert (tmp_path / "hb_generation").read_bytes() == b"     1795636443\n"
    assert increment_generation(tmp_path) == 1795636444
    assert format_generation(1795636442) == b"     1795636442\n"
    assert len(format_generation(1795636442)) == 16


def test_missing_generation_starts_after_now_like_heartbeat(tmp_path):
    assert increment_generation(tmp_path, now=1795637165.9) == 1795637166
    assert (tmp_path / "hb_generation").read_bytes() == b"     1795637166\n"


@pytest.mark.parametrize("content", [b"", b"abc\n", b"   -5\n", b"12 34\n"])
def test_garbage_generation_is_a_clear_error_and_left_untouched(tmp_path, content):
    (tmp_path / "hb_generation").write_bytes(content)
    with pytest.raises(ValueError, match="hb_generation"):
        increment_generation(tmp_path)
    assert (tmp_path / "hb_generation").read_bytes() == content


def test_uuid_is_created_once_as_16_raw_bytes_and_then_stable(tmp_path):
    first, created = load_or_create_uuid(tmp_path)
    assert created and len(first) == 16 and uuid.UUID(bytes=first).version == 4
    assert (tmp_path / "hb_uuid").read_bytes() == first
    again, created_again = load_or_create_uuid(tmp_path)
    assert (again, created_again) == (first, False)


def test_existing_heartbeat_uuid_is_used_as_is(tmp_path):
    raw = uuid.UUID("fd2deb59-ec4d-41b4-87ed-f4feed701efd").bytes
    (tmp_path / "hb_uuid").write_bytes(raw)
    assert load_or_create_uuid(tmp_path) == (raw, False)


def test_uuid_file_of_wrong_size_is_a_clear_error(tmp_path):
    (tmp_path / "hb_uuid").write_bytes(b"fd2deb59-ec4d-41b4-87ed-f4feed701efd\n")
    with pytest.raises(ValueError, match="16 raw bytes"):
        load_or_create_uuid(tmp_path)


def test_uuid_hostname_is_recorded_beside_it(tmp_path):
    assert uuid_host(tmp_path) is None
    record_uuid_host(tmp_path, "server1")
    assert uuid_host(tmp_path) == "server1"
    assert (tmp_path / "hb_uuid.hbvip-host").read_bytes() == b"server1\n"
    record_uuid_host(tmp_path, "server1-new")
    assert uuid_host(tmp_path) == "server1-new"
