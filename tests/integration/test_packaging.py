"""What a user installs: the collection tarball from `ansible-galaxy collection build` and the agent's wheel.

No lab: these build into temporary directories and inspect what came out, so a stray cache, venv or
lab copy in the checkout that would bloat or break the tarball fails here first.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Never in a release: local tooling state and build leftovers (galaxy.yml build_ignore keeps them out).
STRAY_DIRS = {".venv", ".ansible", ".git", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache"}
STRAY_TREES = ("tests/output/", "bench/results/", "agent/build/", "agent/dist/")


def stray(name: str) -> bool:
    parts = name.split("/")
    return bool(STRAY_DIRS & set(parts)) or any(p.endswith(".egg-info") for p in parts) or (
        f"{name}/".startswith(STRAY_TREES)
    )


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("galaxy-build")
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return out / "hbvip-heartbeat-0.1.0.tar.gz"


def test_collection_tarball_holds_the_role_module_and_agent_but_no_local_state(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    strays = [n for n in names if stray(n)]
    assert not strays, f"build_ignore misses {strays[:10]}"
    for wanted in ("MANIFEST.json", "roles/heartbeat_vip/meta/argument_specs.yml", "plugins/modules/hb_vip.py",
                   "agent/pyproject.toml", "agent/src/hbvip/cli.py", "site.yml"):
        assert wanted in names


def test_installed_collection_documents_its_role_and_module(tarball: Path, tmp_path: Path) -> None:
    """The role ships the agent it installs (role_path/../../agent), and ansible-doc reads the installed copy."""
    dest = tmp_path / "collections"
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(dest), str(tarball)],
        check=True, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    installed = dest / "ansible_collections" / "hbvip" / "heartbeat"
    assert (installed / "agent" / "src" / "hbvip" / "daemon.py").is_file()
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(dest), "ANSIBLE_NOCOLOR": "1"}
    docs = {}
    for kind, name in (("role", "hbvip.heartbeat.heartbeat_vip"), ("module", "hbvip.heartbeat.hb_vip")):
        docs[kind] = subprocess.run([str(BIN / "ansible-doc"), "-t", kind, name], env=env, cwd=tmp_path,
                                    check=True, capture_output=True, text=True, timeout=120).stdout
        assert str(installed) in docs[kind], docs[kind][:500]
    assert "heartbeat_vip_auth_secret" in docs["role"]
    assert "haresources" in docs["module"]


def checkout_env(home: Path) -> dict[str, str]:
    """A user's shell in a fresh checkout: no collection installed, no ansible config of their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    return {**env, "HOME": str(home), "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}:{env.get('PATH', '')}"}


def test_the_checkout_is_the_collection_without_installing_it(tmp_path: Path) -> None:
    """README: ansible-doc, the modules and site.yml work from the checkout (its ansible.cfg)."""
    env = checkout_env(tmp_path)
    for kind, name, text in (("module", "hbvip.heartbeat.hb_vip", "Adds, rewrites or removes the resource group"),
                             ("module", "hbvip.heartbeat.hb_vip_info", "Returns this node, its peer"),
                             ("role", "hbvip.heartbeat.heartbeat_vip", "heartbeat_vip_auth_secret")):
        doc = subprocess.run([str(BIN / "ansible-doc"), "-t", kind, name], env=env, cwd=REPO,
                             check=False, capture_output=True, text=True, timeout=120)
        assert doc.returncode == 0, doc.stderr
        assert text in doc.stdout and str(REPO) in doc.stdout, doc.stdout[:500]
    syntax = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory/example", "site.yml"],
                            env=env, cwd=REPO, check=False, capture_output=True, text=True, timeout=120)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    # The info module, run from the checkout on this machine with no agent: the file through the agent's grammar.
    (tmp_path / "ha.d").mkdir()
    (tmp_path / "ha.d" / "haresources").write_text("server1 IPaddr::10.99.250.1/24/eth0 \\\n  failback.sh\n")
    info = subprocess.run([str(BIN / "ansible"), "localhost", "-m", "hbvip.heartbeat.hb_vip_info", "-a",
                           f"config_dir={tmp_path / 'ha.d'} hbvip_path={BIN / 'hbvip'}",
                           "-e", f"ansible_python_interpreter={sys.executable}"],
                          env=env, cwd=REPO, check=False, capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stdout + info.stderr
    assert '"running": false' in info.stdout and '"home_node": "server1"' in info.stdout, info.stdout


def test_agent_builds_as_a_wheel_with_its_console_script_and_only_pyroute2(tmp_path: Path) -> None:
    """Built from a copy so the checkout gets no build/ or egg-info from a test run."""
    src = tmp_path / "agent"
    shutil.copytree(REPO / "agent", src, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("hbvip-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        meta = next(whl.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = next(whl.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "hbvip/cli.py" in names and "hbvip/daemon.py" in names
    assert "hbvip = hbvip.cli:main" in entry_points
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert [r.split(">")[0].split("=")[0].strip() for r in requires] == ["pyroute2"]
    help_text = subprocess.run([sys.executable, "-c", "import sys; from hbvip.cli import main; sys.argv=['hbvip','--help']; main()"],
                               env={**os.environ, "PYTHONPATH": str(wheel)}, capture_output=True, text=True, timeout=60, check=False)
    assert "check-config" in help_text.stdout, help_text.stderr
