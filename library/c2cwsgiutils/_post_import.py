"""Run a function when a module gets imported, or at once when it already is.

The request tracking patches ``requests``; importing ``requests`` costs a noticeable part of a
worker's start-up, and many services never use it. The patch is applied when (and if) the
application imports it.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["cancel", "when_imported"]

Hook = Callable[[ModuleType], None]

_HOOKS: dict[str, list[Hook]] = {}
_LOCK = threading.RLock()


def _take(name: str) -> list[Hook]:
    with _LOCK:
        return _HOOKS.pop(name, [])


class _Loader(importlib.abc.Loader):
    """The module's own loader, then the hooks; every other attribute is the wrapped loader's."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        for hook in _take(module.__name__):
            hook(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader that the other finders return for a hooked module."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname not in _HOOKS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


_FINDER = _Finder()


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once the module ``name`` is imported (now if it already is)."""
    with _LOCK:
        module = sys.modules.get(name)
        if module is None:
            _HOOKS.setdefault(name, []).append(hook)
            if _FINDER not in sys.meta_path:
                sys.meta_path.insert(0, _FINDER)
            return
    hook(module)


def cancel(name: str, hook: Hook) -> None:
    """Forget a hook that has not run yet (no error if there is none)."""
    with _LOCK:
        hooks = [other for other in _HOOKS.get(name, []) if other is not hook]
        if hooks:
            _HOOKS[name] = hooks
        else:
            _HOOKS.pop(name, None)
