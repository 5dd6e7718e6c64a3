"""Optional extras: a clear error naming the extra when a capability's dependency is missing."""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

__all__ = ["require"]

_GC_LOCK = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, as it was before once the last pause ends.

    Importing a package such as ``redis`` or ``cornice`` creates tens of thousands of objects that
    live as long as the process (modules, classes, functions) and no garbage: the collections that
    these allocations trigger scan the whole heap for nothing, and at start-up they add full
    collections (tens of milliseconds each). Nested and concurrent pauses share one state.
    """
    global _gc_pauses, _gc_was_enabled  # noqa: PLW0603  # the collector is process-global
    with _GC_LOCK:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def require(module: str, extra: str, capability: str) -> ModuleType:
    """Import ``module`` or raise a ``ConfigurationError`` that names the extra to install."""
    imported = sys.modules.get(module)
    if imported is not None:
        return imported
    try:
        with _gc_paused():
            return importlib.import_module(module)
    except ImportError as error:
        from pyramid.exceptions import ConfigurationError

        raise ConfigurationError(
            f"{capability} needs the Python package '{module.split('.', maxsplit=1)[0]}': "
            f"install it with: pip install 'c2cwsgiutils[{extra}]'"
        ) from error
