"""The role's one look at a host (roles/heartbeat_vip/files/look.sh), run on a scratch tree.

tasks/main.yml indexes its lines into what the node names resolve to, __heartbeat_vip_on_host (path ->
mode, owner, group, sha1), the texts of haresources and hbvip.cf, the active firewall and the live nft
table; the role's integration tests run it on lab hosts over ssh. Here: every line kind from files the
test controls.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import subprocess
from pathlib import Path

LOOK = Path(__file__).resolve().parents[2] / "roles" / "heartbeat_vip" / "files" / "look.sh"


def look(tmp_path: Path, *paths: Path) -> list[list[str]]:
    config, rc = tmp_path / "ha.d", tmp_path / "rc2.d"
    out = subprocess.run(["sh", str(LOOK), "all", "ahostsv4", "localhost", str(config),
                          str(tmp_path / "hbvip.nft"), "hbvip-test-absent", str(rc), "hbvip heartbeat", *map(str, paths)],
                         check=True, capture_output=True, text=True).stdout
    return [line.split(" ") for line in out.splitlines()]


def test_files_links_and_texts_are_reported_missing_ones_are_not(tmp_path: Path) -> None:
    config, rc = tmp_path / "ha.d", tmp_path / "rc2.d"
    config.mkdir()
    rc.mkdir()
    ha_cf, haresources, missing = config / "ha.cf", config / "haresources", config / "hbvip.cf"
    ha_cf.write_text("keepalive 1\n")
    ha_cf.chmod(0o600)
    haresources.write_text("")
    haresources.chmod(0o644)
    (rc / "K01hbvip").symlink_to("../init.d/hbvip")     # dangling, as an rc link may be
    (rc / "S01other").symlink_to("../init.d/other")
    me = f"{pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name}".split()

    lines = look(tmp_path, ha_cf, haresources, missing)

    files = {f[5]: f[1:5] for f in lines if f[0] == "F"}
    assert files[str(ha_cf)] == ["0600", *me, hashlib.sha1(b"keepalive 1\n").hexdigest()]
    assert files[str(haresources)] == ["0644", *me, hashlib.sha1(b"").hexdigest()]
    assert files[str(rc / "K01hbvip")][3] == "-"                  # a link: no checksum
    assert set(files) == {str(ha_cf), str(haresources), str(rc / "K01hbvip")}
    texts = {f[1]: base64.b64decode(f[2]).decode() for f in lines if f[0] == "C"}
    assert texts == {"haresources": ""}
    assert len([f for f in lines if f[0] == "W"]) == 1


def test_a_path_with_spaces_and_the_nft_line_keep_their_fields(tmp_path: Path) -> None:
    (tmp_path / "ha.d").mkdir()
    odd = tmp_path / "a b"
    odd.write_text("x")
    lines = look(tmp_path, odd)
    assert [" ".join(f[5:]) for f in lines if f[0] == "F"] == [str(odd)]
    for f in lines:
        if f[0] == "N":                          # only where nft is installed
            assert len(f) == 4 and f[1].isdigit() and f[1] != "0" and f[2] == "0"


def test_names_resolve_in_both_modes(tmp_path: Path) -> None:
    """localhost only: any other name could mean a DNS query (the lab's tests resolve the node names)."""
    (tmp_path / "ha.d").mkdir()
    names = [f[1:] for f in look(tmp_path) if f[0] == "R"]
    assert names == [["localhost", "127.0.0.1", "-"]]
    only = subprocess.run(["sh", str(LOOK), "names", "ahostsv4", "localhost"], check=True, capture_output=True,
                          text=True).stdout
    assert only == "R localhost 127.0.0.1 -\n"
