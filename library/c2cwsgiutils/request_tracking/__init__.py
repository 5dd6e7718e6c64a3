"""Request tracking: a request id and a W3C trace context on every request, response and call.

- ``request.c2c_request_id``: the first non-empty header among ``C2C_REQUEST_ID_HEADER`` /
  ``c2c.request_id_header`` (when configured), ``X-Request-ID``, ``X-Correlation-ID``,
  ``Request-ID``, ``X-Varnish`` and ``X-Amzn-Trace-Id``, else a new UUID. The value is kept as
  sent (spaces included, e.g. ``order 1234 from checkout``; only the spaces and tabs around it,
  which HTTP does not count as part of a header value, are dropped) when it is printable ASCII
  of at most 200 characters. Any other value (a control character such as CR, LF, NUL, DEL or
  a C1 control; a character outside ASCII; more than 200 characters) is replaced by a new UUID,
  and a WARNING names the header and shows the rejected value escaped and cut to 64 characters:
  an id must not break a log line, a response header or the headers of outgoing calls, and it
  must look the same in all of them. Non-ASCII text is refused because WSGI gives header bytes
  as latin-1: bytes of UTF-8 text would reach the logs as other characters (or as C1 controls),
  so such an id could not be searched for. The id is echoed on the response, in the configured
  header (``X-Request-ID`` by default).
- W3C ``traceparent``: a valid incoming header gives the trace id and the ``sampled`` flag; an
  absent or invalid one (bad format, all-zero ids) starts a new trace. The request gets its own
  span id; ``(trace_id, span_id, flags)`` is the current trace while the request is handled, and
  the response carries ``traceparent: 00-<trace_id>-<span_id>-<flags>``.
- Outgoing calls made with ``requests`` (``HTTPAdapter.send`` is wrapped once per process, when
  ``requests`` is imported; ``C2C_TRACK_REQUESTS=false`` turns that off, and then only the
  sessions on which a :class:`TrackingAdapter` is mounted, e.g. from :func:`session`, are
  tracked): inside a request, they get the request id header and a ``traceparent`` with the same trace id
  and a new span id, unless the caller set them. Every call without a timeout gets
  ``C2C_REQUESTS_DEFAULT_TIMEOUT`` / ``c2c.requests_default_timeout`` when set, else a warning
  ``Doing a <METHOD> request without timeout to <url>`` is logged. Outside a request no header
  is added and the process defaults (of the last application built) apply.
- :func:`add_requests_observer` lets other capabilities (metrics) observe each outgoing call.

.. versionadded:: 6.0
.. versionchanged:: 6.2
   ``traceparent``, bounded request ids, observers of outgoing calls. An incoming id that is not
   printable ASCII (control or non-ASCII characters) or is longer than 200 characters is replaced
   by a new UUID (logged) instead of being cleaned; printable ids, spaces included, are kept as
   sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from c2cwsgiutils import _context, _headers, _post_import, _settings
from c2cwsgiutils._safety import never_raise, swallow
from c2cwsgiutils.request_tracking import _requests, _traceparent

if TYPE_CHECKING:
    from c2cwsgiutils.request_tracking._adapter import TrackingAdapter, session

__all__ = [
    "RequestTrackingSettings",
    "TrackingAdapter",
    "add_requests_observer",
    "includeme",
    "remove_requests_observer",
    "request_tracking_tween_factory",
    "session",
]

_DEFAULT_HEADERS = ("X-Request-ID", "X-Correlation-ID", "Request-ID", "X-Varnish", "X-Amzn-Trace-Id")
_MAX_ID_LENGTH = 200
# Characters of a rejected id shown in its log line: enough to recognise the client.
_SHOWN_LENGTH = 64
# Spaces and tabs around a header value are not part of it (RFC 9110, 5.5); servers usually drop
# them, and requests refuses to send a header value that starts with one.
_OWS = " \t"
_ENVIRON_KEYS = "c2cwsgiutils.request_tracking.environ_keys"
# Set in the environ by the request id when it replaced the client's: (header, rejected value).
_REJECTED = "c2cwsgiutils.request_tracking.rejected_id"
_LOG = logging.getLogger("c2cwsgiutils.request_tracking")


@_settings.frozen_dataclass
class RequestTrackingSettings:
    """Settings of the request tracking."""

    request_id_header: str = _settings.knob(
        "",
        env="C2C_REQUEST_ID_HEADER",
        ini="c2c.request_id_header",
        doc="Additional request header to take the request id from (checked first).",
    )
    requests_default_timeout: float | None = _settings.knob(
        None,
        env="C2C_REQUESTS_DEFAULT_TIMEOUT",
        ini="c2c.requests_default_timeout",
        convert=_settings.as_float_or_none,
        doc="Timeout (seconds) given to outgoing requests calls that have none.",
    )
    track_requests: bool = _settings.knob(
        True,
        env="C2C_TRACK_REQUESTS",
        ini="c2c.track_requests",
        convert=_settings.as_bool,
        doc="Wrap `requests`' `HTTPAdapter.send` so that every outgoing call gets the request id "
        "and the default timeout (else only sessions with a `TrackingAdapter` do).",
    )

    @property
    def id_headers(self) -> tuple[str, ...]:
        """Request headers searched for an incoming request id, in order."""
        if self.request_id_header:
            return (self.request_id_header, *_DEFAULT_HEADERS)
        return _DEFAULT_HEADERS

    @property
    def response_header(self) -> str:
        """Header that carries the request id on responses and outgoing calls."""
        return self.request_id_header or _DEFAULT_HEADERS[0]


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def _is_valid_id(value: str) -> bool:
    # Printable ASCII, space included: it goes verbatim, and the same, into a response header,
    # the headers of outgoing calls and every log line.
    return len(value) <= _MAX_ID_LENGTH and value.isascii() and value.isprintable()


def _request_id(request: Any) -> str:
    environ = request.environ
    for key, header in request.registry[_ENVIRON_KEYS]:
        value = environ.get(key)
        if value:
            value = str(value).strip(_OWS)
            if not value:
                continue  # a blank header is as good as none: the next one may have the id
            if _is_valid_id(value):
                return value
            # Not logged here: the log line's request fields read this very property. The tween
            # logs it once the new id is known.
            environ[_REJECTED] = (header, value)
            break
    return _traceparent.new_request_id()


def _log_rejected(rejected: tuple[str, str], request_id: str) -> None:
    header, value = rejected
    reason = (
        f"longer than {_MAX_ID_LENGTH} characters"
        if len(value) > _MAX_ID_LENGTH
        else "not printable ASCII (control or non-ASCII characters)"
    )
    # ascii() escapes every control and non-ASCII character: the log line stays one safe line.
    shown = ascii(value[:_SHOWN_LENGTH])
    if len(value) > _SHOWN_LENGTH:
        shown += f"... ({len(value)} characters)"
    _LOG.warning(
        "The request id of the %s header is %s; replaced by %s: %s", header, reason, request_id, shown
    )


def request_tracking_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """Make the request and its trace current, and echo the id and trace on the response."""
    header = _settings.get(registry, RequestTrackingSettings).response_header
    set_headers = _headers.HeaderSetter((header, "traceparent"))
    current_request = _context.current_request
    current_trace = _context.current_trace
    format_header = _traceparent.format_header
    pending = _post_import.pending

    def request_tracking_tween(request: Any) -> Any:
        if pending:  # a wrapper waits for a module that a view may have imported since
            with never_raise("installing the outgoing requests and Redis timing"):
                _post_import.run_pending()
        token = current_request.set(request)
        trace = _traceparent.for_request(request.environ.get("HTTP_TRACEPARENT"))
        trace_token = current_trace.set(trace)
        try:
            try:
                # Decided now, so that a replaced client id is logged once, before the view logs.
                request_id = request.c2c_request_id
                rejected = request.environ.pop(_REJECTED, None)
                if rejected is not None:
                    _log_rejected(rejected, request_id)
            except Exception:  # logged: the request goes on, its id is decided again if needed
                swallow("deciding the request id")
            response = handler(request)
            try:
                set_headers(
                    response, ((header, request.c2c_request_id), ("traceparent", format_header(trace)))
                )
            except Exception:  # logged: the response goes without them
                swallow("setting the request id and traceparent headers")
            return response
        finally:
            current_trace.reset(trace_token)
            current_request.reset(token)

    return request_tracking_tween


def add_requests_observer(observer: Callable[[Any, Any, float], None]) -> None:
    """Call ``observer`` after each outgoing ``requests`` call of the process.

    The observer gets the ``requests.PreparedRequest``, the ``requests.Response`` (``None``
    when the call raised) and the wall-clock duration in seconds. Its exceptions are logged,
    never propagated to the caller.

    .. versionadded:: 6.2
    """
    _requests.add_observer(observer)


def remove_requests_observer(observer: Callable[[Any, Any, float], None]) -> None:
    """Stop calling an observer added by :func:`add_requests_observer` (no error if absent).

    .. versionadded:: 6.2
    """
    _requests.remove_observer(observer)


def includeme(config: Any = None) -> None:
    """Add ``request.c2c_request_id``, the tracking tween and the ``requests`` integration.

    Without ``config`` only the ``requests`` integration is installed, with the settings of
    the environment variables.
    """
    from pyramid.tweens import INGRESS

    if config is None:
        conf = _settings.resolve(RequestTrackingSettings, None)
    else:
        conf = _settings.get(config.registry, RequestTrackingSettings)
    outgoing = _requests.Outgoing(conf.response_header, conf.requests_default_timeout)
    _requests.set_process_defaults(outgoing)
    if conf.track_requests:
        _requests.install()
    if config is None:
        return
    _post_import.subscribe(config)
    config.registry[_requests.REGISTRY_KEY] = outgoing
    config.registry[_ENVIRON_KEYS] = tuple((_environ_key(name), name) for name in conf.id_headers)
    config.add_request_method(_request_id, "c2c_request_id", reify=True)
    # Under the proxy header processing when it is there: nothing before it reads the request.
    config.add_tween(
        "c2cwsgiutils.request_tracking.request_tracking_tween_factory",
        under=("c2cwsgiutils.client_info.client_info_tween_factory", INGRESS),
    )


def __getattr__(name: str) -> Any:
    # TrackingAdapter and session() import requests: only when the application asks for them.
    if name in ("TrackingAdapter", "session"):
        from c2cwsgiutils.request_tracking import _adapter

        return getattr(_adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
