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


def _imported_at_first_heartbeat(names: set[str]) -> set[str]:
    """Which of `names` `hbvip run` has imported when `boot()` sends, and `inspect` if it really ran: the
    console script's import, the command line, cmd_run's deferrals, hbvip.boot and the config."""
    code = ("import sys\n"
            "from hbvip import cli\n"
            "args = cli._run_args(['run', '--log-stderr'])\n"
            "cli._without_openssl()\n"
            "cli.defer('inspect')\n"
            "import hbvip.boot, hbvip.config\n"
            f"print(' '.join(sorted(n for n in {sorted(names)!r} if n in sys.modules)))\n"
            "print('inspect ran' if 'signature' in vars(sys.modules['inspect']) else 'inspect deferred')\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True,
                         cwd="/").stdout.splitlines()
    return set(out[0].split()) | ({"inspect"} if out[1] == "inspect ran" else set())


def test_run_imports_neither_argparse_typing_json_dataclasses_nor_inspect_before_its_first_heartbeat() -> None:
    heavy = {"argparse", "typing", "json", "shutil", "locale", "gettext", "ast", "dis", "tokenize"}
    assert _imported_at_first_heartbeat(heavy | {"dataclasses"}) == set()   # records are hbvip.records'


def test_a_deferred_module_is_the_real_one_once_used() -> None:
    code = ("import sys\n"
            "from hbvip.deferred import defer, load_deferred\n"
            "defer('inspect'); defer('sys')\n"
            "import inspect, dataclasses\n"
            "assert 'dis' not in sys.modules and 'signature' not in vars(inspect)\n"
            "@dataclasses.dataclass\n"
            "class NoDoc:\n"
            "    x: int\n"
            "assert NoDoc.__doc__ == 'NoDoc(x: int)', NoDoc.__doc__\n"   # dataclasses used inspect.signature
            "assert sys.modules['inspect'] is inspect and type(inspect) is type(sys)\n"
            "assert inspect.__file__.endswith('inspect.py') and inspect.__spec__.name == 'inspect'\n"
            "load_deferred()\n"
            "import asyncio\n"
            "assert asyncio.iscoroutinefunction(asyncio.sleep)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd="/", check=False)
    assert out.stdout == "ok\n", out.stderr
