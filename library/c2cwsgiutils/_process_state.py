"""The library's process-global state (wrappers, singletons, caches, flags) and its one reset.

Each module that keeps state for the whole process registers the function that puts it back as
a fresh process has it, with :func:`on_reset`. :func:`reset` runs them all:
:func:`c2cwsgiutils.testing.reset_process_state` calls it, and the library's own tests run it
around every test, so that no test leaks wrappers, secrets, metrics registries or flags into the
next one. It is not meant for production: a running service never needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["on_reset", "reset"]

_RESETS: dict[str, Callable[[], None]] = {}
_LOCK = threading.Lock()


def on_reset(function: Callable[[], None]) -> Callable[[], None]:
    """Register ``function`` to run on :func:`reset` (a decorator; once per qualified name)."""
    with _LOCK:
        _RESETS[f"{function.__module__}.{function.__qualname__}"] = function
    return function


def reset() -> None:
    """Put every registered piece of process-global state back as a fresh process has it.

    In the reverse order of registration: a module registers when it is imported, after the
    modules it imports, so what uses a resource (the broadcaster's listener) stops before the
    resource goes (the Redis clients).
    """
    with _LOCK:
        functions = list(_RESETS.values())
    for function in reversed(functions):
        function()
