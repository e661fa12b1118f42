"""`hbvip run` starts without argparse, typing or json (its first heartbeat waits for every import before
it), and means exactly what argparse would make of the same command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hbvip import cli

PARSED_WITHOUT_ARGPARSE = [
    ["run"],
    ["run", "--log-stderr"],
    ["run", "--config-dir", "/x/ha.d", "--state-dir=/x/state", "--run-dir", "/x/run", "--init-dir", "/x/init.d",
     "--node-name", "server1", "--log-stderr"],
    ["run", "--node-name", "a", "--node-name", "b"],          # the last one wins, as in argparse
    ["run", "--config-dir=", "--run-dir", ""],                # empty values are values
    ["run", "--node-name=x=y"],
]
LEFT_TO_ARGPARSE = [
    ["run", "--config", "/x"],          # an abbreviation argparse accepts
    ["run", "--node-name", "-x"],       # a value that looks like an option: argparse's call
    ["status", "--json"],
    ["check-config"],
]
ERRORS = [
    ["run", "--config_dir", "/x"],
    ["run", "--config-dir"],
    ["run", "--log-stderr=yes"],
    ["run", "extra"],
    ["run", "--bogus"],
    ["run", "-h"],
    ["run", "--"],
]


@pytest.mark.parametrize("argv", PARSED_WITHOUT_ARGPARSE)
def test_plain_run_means_what_argparse_makes_of_it(argv: list[str]) -> None:
    fast = cli._run_args(argv)
    assert fast is not None
    assert vars(fast) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE + ERRORS)
def test_anything_else_is_argparse_s(argv: list[str]) -> None:
    assert cli._run_args(argv) is None


@pytest.mark.parametrize("argv", ERRORS)
def test_mistakes_still_get_argparse_s_message(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out = capsys.readouterr()
    assert exc.value.code in (0, 2)
    assert "usage: hbvip" in out.out + out.err


def test_run_imports_neither_argparse_typing_nor_json_before_its_first_heartbeat() -> None:
    """What `hbvip run` has imported when `boot()` sends: the console script's import, the command line,
    hbvip.boot and the config. (The modules the test itself needs are imported before, and excluded.)"""
    code = ("import sys\n"
            "from hbvip import cli\n"
            "args = cli._run_args(['run', '--log-stderr'])\n"
            "import hbvip.boot, hbvip.config\n"
            "print(' '.join(sorted({'argparse', 'typing', 'json', 'shutil', 'locale', 'gettext'} & set(sys.modules))))\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True,
                         env=None, cwd="/").stdout
    assert out.split() == []
