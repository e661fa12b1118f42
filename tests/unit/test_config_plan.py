"""`hbvip plan-config`: the role's groups replaced, hb_vip's kept line for line, the new set checked.

The role and hb_vip share haresources; a role run that deleted the module's groups (issue 14) would
drop a VIP in service, and one that kept its own old group after a VIP change would serve both.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hbvip.cli import main
from hbvip.config.plan import check_set, merge_haresources

HEADER = "#\n# Ansible managed\n#\n"
ROLE = ["server1 IPaddr::10.99.0.100/24/eth0 failback.sh"]
MODULE = "server2 IPaddr::10.99.0.101/24/eth0 \\\n    failback.sh   # added by hb_vip\n"
HACF = "node server1 server2\nucast eth0 10.99.0.1\nkeepalive 1\ndeadtime 5\n"
AUTHKEYS = "auth 1\n1 sha1 labsecret-0123\n"


def merge(current: str | None, owned: list[str] | None = None, exclusive: bool = False):
    return merge_haresources(current, HEADER, ROLE, owned or [], exclusive=exclusive, path="/etc/ha.d/haresources")


def test_a_fresh_file_is_the_header_and_the_role_groups() -> None:
    merged = merge(None)
    assert merged.text == HEADER + ROLE[0] + "\n"
    assert merged.owned_vips == ("10.99.0.100",) and merged.kept == () and merged.replaced == ()


def test_a_converged_file_comes_back_byte_identical_with_the_module_group_kept() -> None:
    current = HEADER + ROLE[0] + "\n" + MODULE
    merged = merge(current)
    assert merged.text == current
    assert merged.kept == ("IPaddr::10.99.0.101/24/eth0",)
    assert merged.replaced == ("IPaddr::10.99.0.100/24/eth0",)


def test_a_changed_vip_replaces_the_recorded_old_group_and_keeps_the_module_group() -> None:
    current = "# old header\n" + "server1 IPaddr::10.99.0.99/24/eth0 failback.sh\n" + MODULE
    merged = merge(current, owned=["10.99.0.99"])
    assert merged.text == HEADER + ROLE[0] + "\n" + MODULE
    assert merged.replaced == ("IPaddr::10.99.0.99/24/eth0",)


def test_without_the_record_an_unknown_vip_group_is_someone_elses_and_kept() -> None:
    current = HEADER + "server1 IPaddr::10.99.0.99/24/eth0\n"
    assert merge(current).text == HEADER + ROLE[0] + "\n" + "server1 IPaddr::10.99.0.99/24/eth0\n"


def test_a_group_the_module_rewrote_with_the_role_vip_is_the_roles_again() -> None:
    current = HEADER + MODULE + "server1 IPaddr::10.99.0.100/24\n"
    assert merge(current).text == HEADER + ROLE[0] + "\n" + MODULE


def test_exclusive_owns_the_whole_file() -> None:
    merged = merge(HEADER + ROLE[0] + "\n" + MODULE, exclusive=True)
    assert merged.text == HEADER + ROLE[0] + "\n"
    assert set(merged.replaced) == {"IPaddr::10.99.0.100/24/eth0", "IPaddr::10.99.0.101/24/eth0"}


def test_an_unreadable_line_is_kept_and_named_by_the_check_of_the_new_set() -> None:
    merged = merge(HEADER + ROLE[0] + "\nserver2 IPaddr::10.99.0.300/24\n")
    assert merged.text.endswith("server2 IPaddr::10.99.0.300/24\n")
    problems = check_set({"ha.cf": HACF, "haresources": merged.text, "authkeys": AUTHKEYS}, "server1", "/etc/ha.d")
    assert [(p.path, p.line) for p in problems if p.is_error] == [("/etc/ha.d/haresources", 5)]


def test_the_set_is_checked_across_files_but_not_for_scripts_of_another_host() -> None:
    text = HEADER + ROLE[0] + "\n" + "server3 IPaddr::10.99.0.102/24 postgresql\n"
    problems = check_set({"ha.cf": HACF, "haresources": text, "authkeys": AUTHKEYS}, "server1", "/etc/ha.d")
    assert [str(p) for p in problems if p.is_error] == [
        "/etc/ha.d/haresources:5: Bad nodename [server3]: not a node in ha.cf — use one of: server1, server2"]


def test_cli_reads_the_request_on_stdin_and_never_prints_the_secret(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    request = {"node_name": "server1", "config_dir": "/etc/ha.d",
               "files": {"ha.cf": HACF.replace("deadtime 5", "deadtime 1"), "authkeys": AUTHKEYS},
               "haresources": {"current": HEADER + ROLE[0] + "\n" + MODULE, "header": HEADER, "lines": ROLE}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(request)))
    assert main(["plan-config"]) == 2
    out = capsys.readouterr().out
    answer = json.loads(out)
    assert answer["haresources"] == request["haresources"]["current"]
    assert any("must be more than twice keepalive" in p["message"] and p["path"] == "/etc/ha.d/ha.cf"
               for p in answer["problems"])
    assert "labsecret" not in out


def test_check_config_file_only_reads_one_file_without_its_siblings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text(HACF)
    bad.write_text("server1 IPaddr::10.99.0.300/24\n")
    empty = tmp_path / "empty-config-dir"
    empty.mkdir()
    assert main(["check-config", "--config-dir", str(empty), "--file-only", "--ha-cf", str(good)]) == 0
    assert main(["check-config", "--config-dir", str(empty), "--file-only", "--haresources", str(bad)]) == 2
    assert f"{bad}:1:" in capsys.readouterr().err
