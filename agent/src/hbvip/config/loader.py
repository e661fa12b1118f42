"""load_config: read a config directory, check every file and the rules that span files.

Everything is collected before anything is raised, so `hbvip check-config` shows an operator
every problem in one run; the daemon refuses to start (or to reload) on any error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hbvip.config.authkeys import AuthKeys, parse_authkeys
from hbvip.config.extensions import Extensions, parse_extensions
from hbvip.config.health import check_health_references
from hbvip.config.haresources import ResourceGroup, parse_haresources
from hbvip.config.hacf import HaCf, parse_hacf
from hbvip.config.problems import ConfigError, Problem
from hbvip.config.scripts import DEFAULT_INIT_DIR, resolve_script
from hbvip.records import dataclass

HACF, HARESOURCES, AUTHKEYS, EXTENSIONS = "ha.cf", "haresources", "authkeys", "hbvip.cf"
_FILE_ORDER = (HACF, HARESOURCES, AUTHKEYS, EXTENSIONS)


@dataclass(frozen=True)
class Config:
    """Everything one node reads from its config dir, validated."""
    config_dir: Path
    node_name: str
    hacf: HaCf
    groups: tuple[ResourceGroup, ...]
    authkeys: AuthKeys
    ext: Extensions
    digest: str
    """First 16 hex of sha256 over ha.cf, haresources and hbvip.cf (never authkeys: no secret
    leaks through a digest sent to the peer); equal digests = the pair runs the same files."""
    warnings: tuple[Problem, ...] = ()

    @property
    def peers(self) -> tuple[str, ...]:
        me = self.node_name.lower()
        return tuple(n for n in self.hacf.nodes if n.lower() != me)


def config_digest(contents: dict[str, bytes]) -> str:
    """Digest of the non-secret files; each is framed by name and length so files cannot blur."""
    # Imported here, not at module level, so `hbvip run` can still choose hashlib's backend (cli._without_openssl).
    import hashlib  # pylint: disable=import-outside-toplevel

    sha = hashlib.sha256()
    for name in (HACF, HARESOURCES, EXTENSIONS):
        data = contents.get(name, b"")
        sha.update(f"{name}\0{len(data)}\0".encode())
        sha.update(data)
    return sha.hexdigest()[:16]


def _read(path: Path, required: bool, problems: list[Problem]) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if required:
            problems.append(Problem(str(path), None, f"{path.name} not found",
                                    f"create {path} (see the Heartbeat how-to; {path.name} must exist on both nodes)"))
    except IsADirectoryError:
        problems.append(Problem(str(path), None, f"{path.name} is a directory", "replace it with the file"))
    except OSError as exc:
        problems.append(Problem(str(path), None, f"cannot read {path.name}: {exc.strerror}",
                                "check its permissions (hbvip runs as root)"))
    return None


def _check_permissions(path: Path, problems: list[Problem]) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        problems.append(Problem(str(path), None, f"Bad permissions on keyfile [{path}], 600 recommended.",
                                f"chmod 600 {path} (group/other may not see the secret; mode is {stat.S_IMODE(mode):o})"))


def _check_groups(config_dir: Path, hacf: HaCf | None, groups: tuple[ResourceGroup, ...], path: str,
                  init_dir: Path, problems: list[Problem], check_scripts: bool = True) -> None:
    nodes = {n.lower() for n in hacf.nodes} if hacf else None
    for group in groups:
        if nodes is not None and group.home_node.lower() not in nodes:
            problems.append(Problem(path, group.line, f"Bad nodename [{group.home_node}]: not a node in ha.cf",
                                    f"use one of: {', '.join(hacf.nodes)}"))  # type: ignore[union-attr]
        for resource in group.resources:
            if resource.is_native or not check_scripts:
                continue
            script = resolve_script(config_dir, resource.name, init_dir)
            if script is None:
                problems.append(Problem(path, resource.line,
                                        f"resource script {resource.name} not found in {config_dir}/resource.d or {init_dir}",
                                        f"install it as {config_dir}/resource.d/{resource.name} (chmod 755)"))
            elif not os.access(script, os.X_OK):
                problems.append(Problem(path, resource.line, f"resource script {script} is not executable",
                                        f"chmod 755 {script}"))


def _order(problem: Problem) -> tuple[int, int]:
    name = Path(problem.path).name
    rank = _FILE_ORDER.index(name) if name in _FILE_ORDER else len(_FILE_ORDER)
    return rank, problem.line or 0


def load_config(config_dir: Path, node_name: str | None = None, *, check_permissions: bool = True,
                init_dir: Path = DEFAULT_INIT_DIR, check_scripts: bool = True) -> Config:
    """Load and check <config_dir>/{ha.cf,haresources,authkeys[,hbvip.cf]} for node `node_name`.

    node_name defaults to `uname -n`, as Heartbeat names nodes.  Raises ConfigError carrying
    every problem (warnings included) when any error is found. check_scripts=False skips looking
    for the resource scripts, for a set checked away from the host that will run it.
    """
    config_dir = Path(config_dir)
    node_name = node_name if node_name is not None else os.uname().nodename
    problems: list[Problem] = []
    contents: dict[str, bytes] = {}
    for name in _FILE_ORDER:
        data = _read(config_dir / name, required=name != EXTENSIONS, problems=problems)
        if data is not None:
            contents[name] = data

    def text(name: str) -> str | None:
        # surrogateescape keeps non-UTF-8 secrets byte-exact through the str parsers
        return contents[name].decode("utf-8", "surrogateescape") if name in contents else None

    hacf = groups = authkeys = None
    ext = Extensions()
    hacf_path, res_path, auth_path = (str(config_dir / n) for n in (HACF, HARESOURCES, AUTHKEYS))
    if (t := text(HACF)) is not None:
        hacf, found = parse_hacf(t, hacf_path)
        problems += found
        if hacf is not None and node_name.lower() not in (n.lower() for n in hacf.nodes):
            problems.append(Problem(hacf_path, hacf.node_line, f"Current node [{node_name}] not in configuration!",
                                    f"add {node_name} (this host's `uname -n`) to the 'node' line, or fix the hostname"))
    if (t := text(HARESOURCES)) is not None:
        groups, found = parse_haresources(t, res_path)
        problems += found
        _check_groups(config_dir, hacf, groups, res_path, Path(init_dir), problems, check_scripts)
    if (t := text(AUTHKEYS)) is not None:
        authkeys, found = parse_authkeys(t, auth_path)
        problems += found
        if check_permissions:
            _check_permissions(config_dir / AUTHKEYS, problems)
    if (t := text(EXTENSIONS)) is not None:
        ext, found = parse_extensions(t, str(config_dir / EXTENSIONS))
        problems += found
        if groups is not None:
            scripts = tuple(dict.fromkeys(r.name for g in groups for r in g.resources if not r.is_native))
            check_health_references(ext.checks, ext.monitors, tuple(g.key for g in groups), scripts,
                                    str(config_dir / EXTENSIONS), problems)

    problems.sort(key=_order)
    if any(p.is_error for p in problems) or hacf is None or groups is None or authkeys is None:
        raise ConfigError(problems)
    return Config(config_dir=config_dir, node_name=node_name, hacf=hacf, groups=groups, authkeys=authkeys,
                  ext=ext, digest=config_digest(contents), warnings=tuple(problems))
