"""The agent's house rules in numbers: the largest files, classes and functions of agent/src/hbvip.

`python scripts/sizes.py` prints the top of each; the limits (file 400, class 300, function 60 lines)
are what tests/unit/test_house_rules.py enforces.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "agent" / "src" / "hbvip"
LIMITS = {"file": 400, "class": 300, "function": 60}


def measure(root: Path = ROOT) -> dict[str, list[tuple[int, str]]]:
    """(lines, where) for every file, class and function under root, largest first."""
    out: dict[str, list[tuple[int, str]]] = {"file": [], "class": [], "function": []}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(root.parent)
        out["file"].append((len(text.splitlines()), str(rel)))
        for node in ast.walk(ast.parse(text)):
            kind = "class" if isinstance(node, ast.ClassDef) else \
                "function" if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
            if kind is not None:
                out[kind].append((node.end_lineno - node.lineno + 1, f"{rel}:{node.lineno} {node.name}"))
    return {k: sorted(v, reverse=True) for k, v in out.items()}


def main() -> int:
    for kind, rows in measure().items():
        print(f"largest {kind}s (limit {LIMITS[kind]}):")
        for lines, where in rows[:5]:
            print(f"  {lines:5d}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
