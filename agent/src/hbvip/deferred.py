"""Modules `hbvip run` imports only when something uses them, not when something imports them.

`inspect` imports ast, dis and tokenize: 30 M instructions, a sixth of the daemon's time to its first
heartbeat. `dataclasses` imported it; the agent's records are now `hbvip.records`, so nothing `hbvip run`
imports before its first heartbeat needs `inspect`. The daemon needs it later (asyncio uses it), so
`hbvip run` still defers it before the config is imported, and loads it after the first heartbeats while
`hbvip.boot.Beating` beats: a module that comes to import `inspect` on that path pays nothing until it
uses it.

A deferred module is a placeholder in sys.modules that every `import` returns; the first attribute
read that is not there runs the real module's code in that same object, so every importer ends up
holding the real module. (importlib.util.LazyLoader means the same, but before Python 3.12 a plain
`import` of a lazy module already loads it: the import system reads its __spec__.)
"""

from __future__ import annotations

import sys
import types


class _Deferred(types.ModuleType):
    """A module in sys.modules whose code has not run yet: the first missing attribute runs it."""

    def __getattr__(self, attr: str) -> object:
        load(self)
        return getattr(self, attr)


def defer(name: str) -> None:
    """Make `import name` return a placeholder that loads on first use (only if nobody imported it yet)."""
    if name not in sys.modules:
        sys.modules[name] = _Deferred(name)


def load_deferred() -> None:
    """Load every module still deferred (the daemon does, once its first heartbeats are out)."""
    for module in list(sys.modules.values()):
        load(module)


def load(module: object) -> None:
    """Run a deferred module's code in the very object its importers hold; nothing for any other module."""
    if type(module) is not _Deferred:   # pylint: disable=unidiomatic-typecheck  # not a subclass: exactly ours
        return
    import importlib.util  # pylint: disable=import-outside-toplevel

    name = module.__name__
    del sys.modules[name]                  # find_spec answers sys.modules[name].__spec__ if it is there
    try:
        spec = importlib.util.find_spec(name)
    finally:
        sys.modules[name] = module
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    module.__class__ = types.ModuleType
    module.__spec__, module.__loader__, module.__package__ = spec, spec.loader, spec.parent
    if spec.has_location:
        module.__file__, module.__cached__ = spec.origin, spec.cached
    spec.loader.exec_module(module)
