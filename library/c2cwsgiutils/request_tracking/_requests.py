"""Outgoing ``requests`` calls: request id, trace context and default timeout.

c2cwsgiutils 6 documents that "the requests module is patched" to add the request id header and
the default timeout to every call, and applications rely on it (``requests.get(...)`` anywhere in
their code). ``requests`` has no public hook for that, so this is one of the library's two wraps
of another package's public method (see :mod:`c2cwsgiutils.redis_stats` for the other):
``requests.adapters.HTTPAdapter.send``, whose documented signature is checked first (a release
that changed it gets no wrapper and a warning). It is installed once per process, when
``requests`` is imported (:mod:`c2cwsgiutils._post_import`, no import hook), and not at all with
``C2C_TRACK_REQUESTS=false``: :class:`TrackingAdapter` then gives the same behaviour to the
sessions it is mounted on, through requests' public transport adapter API. The wrapper reads the
settings of the application handling the current request (stored on its registry at include
time), or the process defaults (the last application included) for calls made outside a request.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from c2cwsgiutils import _context, _post_import, _process_state, _settings
from c2cwsgiutils._redact import redact
from c2cwsgiutils._safety import never_raise
from c2cwsgiutils.request_tracking import _traceparent

if TYPE_CHECKING:
    import requests
    from requests.adapters import HTTPAdapter

__all__ = [
    "REGISTRY_KEY",
    "Observer",
    "Outgoing",
    "add_observer",
    "install",
    "is_installed",
    "remove_observer",
    "send",
    "set_process_defaults",
    "uninstall",
]

_LOG = logging.getLogger("c2cwsgiutils.request_tracking")

REGISTRY_KEY = "c2cwsgiutils.request_tracking.outgoing"
# The patched module: importing requests is deferred until the application does it.
_ADAPTERS = "requests.adapters"

# Called after each outgoing call with the prepared request, the response (None when the call
# raised) and the wall-clock duration in seconds.
Observer = Callable[["requests.PreparedRequest", "requests.Response | None", float], None]


@_settings.frozen_dataclass
class Outgoing:
    """What an application adds to its outgoing calls."""

    header: str = "X-Request-ID"
    timeout: float | None = None


class _State:
    """The patch of the process."""

    __slots__ = ("defaults", "observers", "original")

    def __init__(self) -> None:
        self.original: Callable[..., requests.Response] | None = None
        self.defaults = Outgoing()
        # A tuple replaced under the lock: the wrapper reads it without locking.
        self.observers: tuple[Observer, ...] = ()


_STATE = _State()
_LOCK = threading.Lock()


def _loggable(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]  # never log credentials
    return redact(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))


def _prepare(
    request: requests.PreparedRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    current = _context.current_request.get()
    conf = _STATE.defaults
    if current is not None:
        conf = current.registry.get(REGISTRY_KEY, conf)
        headers = request.headers
        request_id = getattr(current, "c2c_request_id", None)
        if request_id and conf.header not in headers:
            headers[conf.header] = request_id
        trace = _context.current_trace.get()
        if trace is not None and "traceparent" not in headers:
            headers["traceparent"] = _traceparent.format_header(_traceparent.child(trace))
    # The timeout is the second positional parameter of HTTPAdapter.send, after stream.
    positional = len(args) > 1
    if (args[1] if positional else kwargs.get("timeout")) is None:
        if conf.timeout is None:
            _LOG.warning(
                "Doing a %s request without timeout to %s", request.method, _loggable(str(request.url))
            )
        elif positional:
            args = (args[0], conf.timeout, *args[2:])
        else:
            kwargs = {**kwargs, "timeout": conf.timeout}
    return args, kwargs


def _notify(
    observers: tuple[Observer, ...],
    request: requests.PreparedRequest,
    response: requests.Response | None,
    start: float,
) -> None:
    duration = time.perf_counter() - start
    for observer in observers:
        with never_raise("observing an outgoing request"):
            observer(request, response, duration)


def send(
    original: Callable[..., requests.Response],
    adapter: HTTPAdapter,
    request: requests.PreparedRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> requests.Response:
    """Send ``request`` with ``original``, with the request id, trace context and default timeout."""
    with never_raise("preparing an outgoing request"):
        args, kwargs = _prepare(request, args, kwargs)
    observers = _STATE.observers
    if not observers:
        return original(adapter, request, *args, **kwargs)
    start = time.perf_counter()
    try:
        response = original(adapter, request, *args, **kwargs)
    except BaseException:
        _notify(observers, request, None, start)
        raise
    _notify(observers, request, response, start)
    return response


def is_installed() -> bool:
    """Tell whether ``HTTPAdapter.send`` is wrapped in this process."""
    return _STATE.original is not None


def _wrap(original: Callable[..., requests.Response]) -> Callable[..., requests.Response]:
    def wrapper(
        self: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        return send(original, self, request, args, kwargs)

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]  # for introspection, as functools.wraps
    wrapper.__doc__ = original.__doc__
    return wrapper


# HTTPAdapter.send's documented parameters: the wrapper finds the timeout by position or name.
_SEND_PARAMETERS = ("self", "request", "stream", "timeout", "verify", "cert", "proxies")


def _patch(adapters: ModuleType) -> None:
    with _LOCK:
        if _STATE.original is not None:
            return
        adapter = adapters.HTTPAdapter
        if not _post_import.has_parameters(adapter.send, _SEND_PARAMETERS):
            _LOG.warning(
                "requests.adapters.HTTPAdapter.send has an unknown signature: outgoing calls get no "
                "request id and no default timeout (use c2cwsgiutils.request_tracking.TrackingAdapter)"
            )
            return
        _STATE.original = adapter.send
        adapter.send = _wrap(adapter.send)  # a documented exception: see the module's docstring


def install() -> None:
    """Wrap ``HTTPAdapter.send``, once per process, when ``requests`` is (or gets) imported."""
    _post_import.when_imported(_ADAPTERS, _patch)


@_process_state.on_reset
def uninstall() -> None:
    """Restore ``HTTPAdapter.send`` and forget the process defaults and observers (for tests)."""
    _post_import.cancel(_ADAPTERS, _patch)
    with _LOCK:
        if _STATE.original is not None:
            from requests.adapters import HTTPAdapter

            HTTPAdapter.send = _STATE.original  # type: ignore[method-assign]  # undo the patch
        _STATE.original = None
        _STATE.defaults = Outgoing()
        _STATE.observers = ()


def set_process_defaults(outgoing: Outgoing) -> None:
    """Use ``outgoing`` for the calls made outside a request."""
    _STATE.defaults = outgoing


def add_observer(observer: Observer) -> None:
    """Call ``observer(prepared_request, response_or_none, seconds)`` after each outgoing call."""
    with _LOCK:
        _STATE.observers = (*_STATE.observers, observer)


def remove_observer(observer: Observer) -> None:
    """Stop calling ``observer`` (no error if it was not added)."""
    with _LOCK:
        _STATE.observers = tuple(o for o in _STATE.observers if o is not observer)
