"""The agent's layout rules, checked: small modules, time read only at the edge, no import cycles,
and test modules that share code through helper modules, never through each other.

These keep the refactor of issue 17 from eroding: a 650-line class or a decision calling time.time()
deep inside the node is a failing test here, not a review comment.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "agent" / "src" / "hbvip"
_spec = importlib.util.spec_from_file_location("sizes", REPO / "scripts" / "sizes.py")
sizes = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(sizes)  # type: ignore[union-attr]

#: Over a limit for a reason that is someone else's to remove, as "hbvip/<file> <name>" (none today).
KNOWN_OVER: set[str] = set()
#: Modules whose job is to meet the clock, a socket or the kernel; everything else takes a Clock.
TIME_EDGE = {"clock.py", "cli.py", "status_table.py", "lint.py", "log.py", "metrics.py", "net", "resources/runner.py",
             "resources/scripts.py", "wire/identity.py"}
#: Test modules importing test modules (none: shared helpers live in helper modules such as
#: tests/integration/ansible_lab.py and tests/unit/plugins/modules/fake_agent.py).
KNOWN_TEST_IMPORTS: set[tuple[str, str]] = set()


def test_no_file_class_or_function_of_the_agent_is_over_its_limit() -> None:
    over = [f"{kind} {where}: {lines} lines (limit {sizes.LIMITS[kind]})"
            for kind, rows in sizes.measure(AGENT).items() for lines, where in rows
            if lines > sizes.LIMITS[kind] and _unnumbered(where) not in KNOWN_OVER]
    assert not over, over


def _unnumbered(where: str) -> str:
    """`hbvip/x.py:12 name` -> `hbvip/x.py name`: exceptions must not break when a line moves."""
    path, _colon, rest = where.partition(":")
    return f"{path} {rest.split(' ', 1)[1]}" if " " in rest else path


def _module(path: Path) -> str:
    rel = path.relative_to(AGENT.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Modules of hbvip that `path` imports, also those only for type hints (`if TYPE_CHECKING:`): a
    cycle of types is still two modules that cannot be understood one without the other."""
    tree = ast.parse(path.read_text())
    me = _module(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            out.add(name)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m == "hbvip" or m.startswith("hbvip.")}


def test_the_agent_has_no_import_cycle() -> None:
    graph = {_module(p): _imports(p) for p in AGENT.rglob("*.py")}
    cycles: list[list[str]] = []

    def visit(mod: str, stack: list[str]) -> None:
        for dep in sorted(graph.get(mod, ())):
            if dep in stack:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, stack + [dep])
        done.add(mod)

    done: set[str] = set()
    for mod in sorted(graph):
        visit(mod, [mod])
    # A package importing its own modules (hbvip.cluster -> hbvip.cluster.events) is how packages work.
    real = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c[1:])]
    assert not real, real


def test_time_is_read_only_at_the_edge() -> None:
    """The node, the machines and their helpers get the time from a Clock (fake in tests)."""
    offenders = []
    for path in AGENT.rglob("*.py"):
        rel = path.relative_to(AGENT).as_posix()
        if rel in TIME_EDGE or rel.split("/")[0] in TIME_EDGE:
            continue
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.Import) and any(a.name == "time" for a in n.names)
               or isinstance(n, ast.ImportFrom) and n.module == "time" for n in ast.walk(tree)):
            offenders.append(rel)
    assert not offenders, offenders


def test_no_test_module_imports_another() -> None:
    found = set()
    for path in (REPO / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found |= {(path.stem, n) for n in names if n.split(".")[-1].startswith("test_")}
    assert found <= KNOWN_TEST_IMPORTS, sorted(found - KNOWN_TEST_IMPORTS)


def test_every_test_module_has_a_basename_of_its_own() -> None:
    """pytest imports test modules by basename (no packages under tests/): a second test_x.py in another
    directory is a collection error of the whole run, which a run of one directory does not show."""
    names = sorted(p.name for p in (REPO / "tests").rglob("test_*.py"))
    assert not {n for n in names if names.count(n) > 1}
