"""hbvip.cf's health directives (`check`, `monitor`, `track_interface`): the forms of issue 18, Heartbeat's
time units, keepalived's defaults, and one `file:line` problem per mistake (also across files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hbvip.config import ConfigError, load_config, parse_extensions
from hbvip.config.health import Check, Monitor, TrackInterface


def parse(text: str):
    return parse_extensions(text, "hbvip.cf")


def test_check_with_every_option_and_heartbeat_units() -> None:
    ext, problems = parse('check web command "curl -fsS http://127.0.0.1/ # not a comment" interval 500ms '
                          'timeout 2 fall 3 rise 2 group IPaddr::10.99.0.100/24/eth0  # a comment\n')
    assert problems == []
    assert ext.checks == (Check("web", "curl -fsS http://127.0.0.1/ # not a comment", 1, interval=0.5, timeout=2.0,
                                fall=3, rise=2, group="IPaddr::10.99.0.100/24/eth0"),)


def test_check_defaults_are_keepalived_vrrp_script_defaults() -> None:
    ext, problems = parse("check a command 'true'\ncheck b command 'true' interval 3\n")
    assert problems == []
    a, b = ext.checks
    assert (a.interval, a.timeout, a.fall, a.rise, a.group) == (1.0, 1.0, 1, 1, None)
    assert (b.interval, b.timeout) == (3.0, 3.0)      # timeout follows the interval unless given


def test_monitor_and_track_interface() -> None:
    ext, problems = parse("monitor failback.sh interval 2 timeout 5 fall 2 restarts 0 failure_timeout 60\n"
                          "monitor other.sh\ntrack_interface eth0\n")
    assert problems == []
    assert ext.monitors == (Monitor("failback.sh", 1, interval=2.0, timeout=5.0, fall=2, restarts=0,
                                    failure_timeout=60.0), Monitor("other.sh", 2))
    assert ext.monitors[1].restarts == 1 and ext.monitors[1].failure_timeout == 0.0
    assert ext.track_interfaces == (TrackInterface("eth0", 3),)


@pytest.mark.parametrize(("line", "message"), [
    ('check web command "curl', "cannot split the line"),
    ("check web", "check needs a name and a command"),
    ("check web cmd 'true'", "check needs a name and a command"),
    ("check web command ''", "has an empty command"),
    ("check web command 'true' interval", "option 'interval' has no value"),
    ("check web command 'true' intervall 2", 'unknown option [intervall] (did you mean "interval"?)'),
    ("check web command 'true' interval 2 interval 3", "option interval given twice"),
    ("check web command 'true' interval 0", "interval value '0' is not valid"),
    ("check web command 'true' timeout 2min", "timeout value '2min' is not valid"),
    ("check web command 'true' fall 0", "fall value '0' is not valid"),
    ("check web command 'true' rise x", "rise value 'x' is not valid"),
    ("check web command 'true' restarts 1", "unknown option [restarts]"),
    ("monitor", "monitor needs the resource script's name"),
    ("monitor a.sh restarts -1", "restarts value '-1' is not valid"),
    ("monitor a.sh rise 2", "unknown option [rise]"),
    ("track_interface", "track_interface takes one interface name"),
    ("track_interface eth0 eth1", "track_interface takes one interface name"),
    ("track_interface eth/0", "track_interface takes one interface name"),
])
def test_each_mistake_is_one_problem_with_file_and_line(line: str, message: str) -> None:
    ext, problems = parse(f"garp_count 3\n{line}\n")
    assert [(p.path, p.line) for p in problems] == [("hbvip.cf", 2)]
    assert message in problems[0].message and problems[0].fix
    assert ext.garp_count == 3 and not ext.checks and not ext.monitors and not ext.track_interfaces


def test_a_name_defined_twice_names_the_first_line() -> None:
    _ext, problems = parse("check a command true\nmonitor m.sh\ncheck a command false\nmonitor m.sh\n")
    assert [(p.line, p.message) for p in problems] == [
        (3, "check a is already defined on line 1"), (4, "monitor m.sh is already defined on line 2")]


def test_references_to_haresources_are_checked_across_files(config_dir: Path) -> None:
    (config_dir / "hbvip.cf").write_text("check ok command true group IPaddr::10.99.0.100/24/eth0\n"
                                         "check bad command true group IPaddr::10.99.0.101\n"
                                         "monitor failback.sh\nmonitor failbak.sh\nmonitor IPaddr\n")
    with pytest.raises(ConfigError) as err:
        load_config(config_dir, "server1", init_dir=config_dir / "none")
    found = [(Path(p.path).name, p.line, p.message) for p in err.value.problems]
    assert found == [
        ("hbvip.cf", 2, "check bad: no haresources group [IPaddr::10.99.0.101]"
                        ' (did you mean "IPaddr::10.99.0.100/24/eth0"?)'),
        ("hbvip.cf", 4, 'monitor failbak.sh: not a resource script in haresources (did you mean "failback.sh"?)'),
        ("hbvip.cf", 5, "monitor IPaddr: not a resource script in haresources"),
    ]
    (config_dir / "hbvip.cf").write_text("check ok command true group IPaddr::10.99.0.100/24/eth0\n"
                                         "monitor failback.sh restarts 2\ntrack_interface eth0\n")
    config = load_config(config_dir, "server1", init_dir=config_dir / "none")
    assert [c.name for c in config.ext.checks] == ["ok"] and config.ext.monitors[0].restarts == 2


def test_check_config_prints_file_and_line(config_dir: Path) -> None:
    (config_dir / "hbvip.cf").write_text("check web command 'true' fall none\n")
    run = subprocess.run([sys.executable, "-m", "hbvip.cli", "check-config", "--config-dir", str(config_dir),
                          "--node", "server1"], capture_output=True, text=True, check=False)
    assert run.returncode == 2, run       # exit 2: configuration error (DESIGN.md)
    assert f"{config_dir}/hbvip.cf:1: fall value 'none' is not valid" in run.stdout + run.stderr


def test_the_example_in_docs_operations_parses() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = doc.split("### Service health", 1)[1]
    example = section.split("```\n", 2)[1]
    ext, problems = parse(example)
    assert problems == []
    assert ([c.name for c in ext.checks], [m.script for m in ext.monitors], len(ext.track_interfaces)) == (
        ["web", "db"], ["apache2"], 1)
    assert ext.monitors[0].failure_timeout == 600.0
