"""Run a function once a module is imported, without an import hook.

The request tracking wraps ``requests``, the Redis timing wraps ``redis`` and the SQL timing
listens to SQLAlchemy's classes; importing those packages costs a noticeable part of a worker's
start-up, and many services never use some of them. So the library does not import them: a hook
runs at once when its module is already imported, else it waits in :data:`pending` and
:func:`run_pending` runs it once the application has imported the module. ``run_pending`` is
called when the Pyramid application is created and by the request tracking tween while hooks are
pending (a dictionary lookup per pending module): a module imported by the application's code
or its scan gets its hook before the first request; one first imported inside a view gets it
before the next request.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from c2cwsgiutils import _process_state

__all__ = ["cancel", "has_parameters", "pending", "run_pending", "subscribe", "when_imported"]

Hook = Callable[[ModuleType], None]

# Module name -> hooks waiting for it. Read without the lock on the request path (a falsy check).
pending: dict[str, list[Hook]] = {}
_LOCK = threading.RLock()


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once the module ``name`` is imported (now if it already is)."""
    with _LOCK:
        module = sys.modules.get(name)
        if module is None:
            pending.setdefault(name, []).append(hook)
            return
    hook(module)


def run_pending() -> None:
    """Run the hooks of the pending modules that are imported by now."""
    with _LOCK:
        ready = [(name, pending.pop(name)) for name in list(pending) if name in sys.modules]
    for name, hooks in ready:
        # A module is in sys.modules from the start of its import: import_module waits until the
        # thread importing it is done, so a hook never sees a half-initialised module.
        module = importlib.import_module(name)
        for hook in hooks:
            hook(module)


@_process_state.on_reset
def _forget() -> None:
    with _LOCK:
        pending.clear()


def cancel(name: str, hook: Hook) -> None:
    """Forget a hook that has not run yet (no error if there is none)."""
    with _LOCK:
        hooks = [other for other in pending.get(name, []) if other != hook]
        if hooks:
            pending[name] = hooks
        else:
            pending.pop(name, None)


def subscribe(config: Any) -> None:
    """Run the pending hooks when the Pyramid application of ``config`` is created."""
    from pyramid.events import ApplicationCreated

    config.add_subscriber(_on_application_created, ApplicationCreated)


def _on_application_created(event: object) -> None:
    del event
    run_pending()


def has_parameters(function: Callable[..., Any], names: tuple[str, ...]) -> bool:
    """Tell whether ``function``'s parameters are ``names``, in that order.

    The library wraps two public methods of other packages (``requests``' ``HTTPAdapter.send`` and
    ``redis``' ``Redis.execute_command``). A release that changed their documented signature
    would make the wrapper pass arguments wrongly: the wrapper is then not installed, with a
    warning, and the calls go on without the library's addition.
    """
    try:
        parameters = tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return parameters == names
