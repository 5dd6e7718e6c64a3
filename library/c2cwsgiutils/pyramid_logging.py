"""Logging handlers that write one JSON object per record, with the request's context.

Both handlers serialise a record the same way: the fixed fields of the reference (``host``,
``msg``, ``full_message``/``full_msg`` when a traceback is present, ``timestamp``, ``level`` as a
syslog severity, ``logger_name``, ``source_facility``, ``file``, ``line``, ``function``, ``pid``,
``thread_name``, ``process_name``, ``level_name``), then, when a Pyramid request is being handled
in the current context, ``client_addr``, ``method``, ``matched_route``, ``path``, ``request_id``
and ``trace_id``, then every ``extra=`` attribute of the record.

The request comes from a context variable set by the request tracking tween, never from a
threadlocal, and the fields that cannot change during a request are computed once per request.
Secrets (``secret=...`` in a URL, ``X-API-Key`` values) are masked in the message, the traceback
and the text extras. Serialising never raises: values that JSON cannot represent are written as
text, and a record that still cannot be serialised gives a line with its message.

Use them in the ini file::

    [handler_json]
    class = c2cwsgiutils.pyramid_logging.JsonLogHandler
    kwargs = {"stream": "ext://sys.stdout"}
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import socket
from typing import IO, Any

import orjson

from c2cwsgiutils import _context
from c2cwsgiutils._redact import redact

__all__ = ["JsonLogHandler", "PyramidCeeSysLogHandler", "serialize"]

# Attributes every LogRecord has: everything else on a record came from ``extra=`` or a filter.
_STANDARD_ATTRIBUTES = frozenset(
    {
        *vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)),
        "message",
        "asctime",
        "taskName",
    }
)
# Fields an ``extra=`` attribute may not replace; a clashing extra is written as ``extra_<name>``.
_PROTECTED_FIELDS = frozenset(
    {
        "host",
        "msg",
        "full_message",
        "full_msg",
        "timestamp",
        "level",
        "logger_name",
        "source_facility",
        "file",
        "line",
        "function",
        "pid",
        "thread_name",
        "process_name",
    }
)
_SYSLOG_SEVERITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
_OPTIONS = orjson.OPT_NON_STR_KEYS
# Key of the per-request cache of the request fields in the WSGI environ.
_REQUEST_FIELDS_KEY = "c2cwsgiutils.pyramid_logging.fields"
_TRACEBACK_FORMATTER = logging.Formatter()

_host: str | None = None


def _get_host() -> str:
    # Resolved once per process, on first use: getfqdn may query the resolver.
    global _host  # noqa: PLW0603  # a process-wide cache of an immutable value
    if _host is None:
        _host = socket.getfqdn()
    return _host


def _custom_severity(levelno: object) -> int:
    """Severity of a level that is not one of the five standard ones."""
    if not isinstance(levelno, int):  # a hand-made record (logging.makeLogRecord) has no level
        return _SYSLOG_SEVERITY[logging.INFO]
    # Custom levels map to the severity of the standard level just below them.
    for threshold, value in sorted(_SYSLOG_SEVERITY.items(), reverse=True):
        if levelno >= threshold:
            return value
    return 7


def _safe_text(value: object) -> str:
    """``str(value)`` that never raises and is always valid UTF-8."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        try:
            text = repr(value)
        except Exception:
            text = f"<unprintable {type(value).__name__}>"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _default(value: Any) -> str:
    # Only called by orjson for the values it cannot serialise natively.
    return _safe_text(value)


def _message(record: logging.LogRecord) -> str:
    try:
        message = record.getMessage()
    except Exception:
        message = f"{_safe_text(record.msg)} (cannot be formatted with {_safe_text(record.args)})"
    return redact(message)


def _full_message(record: logging.LogRecord, message: str) -> str | None:
    if not (record.exc_info or record.exc_text or record.stack_info):
        return None
    parts = [message]
    try:
        if record.exc_info and not record.exc_text:
            # Cached on the record, as logging.Formatter does, for the other handlers.
            record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(_TRACEBACK_FORMATTER.formatStack(record.stack_info))
    except Exception:
        parts.append("<the traceback cannot be formatted>")
    return redact("\n".join(parts))


def _request_fields(request: Any) -> dict[str, Any]:
    """The fields of a request that do not change while it is handled, cached in its environ."""
    environ = request.environ
    fields: dict[str, Any] | None = environ.get(_REQUEST_FIELDS_KEY)
    if fields is None:
        fields = {}
        for name, attribute in (
            ("client_addr", "client_addr"),
            ("method", "method"),
            ("path", "path"),
            ("request_id", "c2c_request_id"),
        ):
            try:
                value = getattr(request, attribute, None)
            except Exception:  # a broken request must not prevent logging
                value = None
            if value is not None:
                fields[name] = redact(value) if isinstance(value, str) else value
        environ[_REQUEST_FIELDS_KEY] = fields
    return fields


def _add_context(data: dict[str, Any]) -> None:
    request = _context.current_request.get()
    if request is not None:
        data.update(_request_fields(request))
        route = getattr(request, "matched_route", None)
        if route is not None:
            data["matched_route"] = route.name
    trace = _context.current_trace.get()
    if trace is not None:
        data["trace_id"] = trace[0]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    message = _message(record)
    name = record.name
    data: dict[str, Any] = {
        "host": _host or _get_host(),
        "msg": message,
        "timestamp": record.created,
        "level": _SYSLOG_SEVERITY.get(record.levelno) or _custom_severity(record.levelno),
        "logger_name": name,
        "source_facility": name,
        "file": record.pathname,
        "line": record.lineno,
        "function": record.funcName,
        "pid": record.process,
        "thread_name": record.threadName,
        "process_name": record.processName,
        "level_name": record.levelname,
    }
    full_message = _full_message(record, message)
    if full_message is not None:
        data["full_message"] = full_message
        data["full_msg"] = "true"
    _add_context(data)
    attributes = vars(record)
    # A set difference in C instead of a Python loop over the two dozen standard attributes.
    extras = attributes.keys() - _STANDARD_ATTRIBUTES
    if extras:
        for key in sorted(extras):
            value = attributes[key]
            data[f"extra_{key}" if key in _PROTECTED_FIELDS else key] = (
                redact(value) if isinstance(value, str) else value
            )
    return data


def _sanitized(data: dict[str, Any]) -> dict[str, Any]:
    """Replace every value orjson rejects (huge integers, surrogates, cycles, ...) by its text."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        try:
            orjson.dumps(value, default=_default, option=_OPTIONS)
        except Exception:
            value = _safe_text(value)  # noqa: PLW2901  # the replacement is the point
        result[_safe_text(key)] = value
    return result


def serialize(record: logging.LogRecord) -> bytes:
    """Return the JSON object (UTF-8, no newline) that the handlers write for ``record``.

    Never raises: a record whose fields cannot be serialised still gives an object with its
    message and level.

    Args:
        record: the log record.

    Returns:
        The JSON document.
    """
    try:
        data = _fields(record)
    except Exception:
        data = {
            "msg": _safe_text(getattr(record, "msg", "")),
            "level": 3,
            "logger_name": _safe_text(getattr(record, "name", "")),
            "full_msg": "the log record cannot be read",
        }
    try:
        return orjson.dumps(data, default=_default, option=_OPTIONS)
    except Exception:
        return orjson.dumps(_sanitized(data), default=_default, option=_OPTIONS)


class JsonLogHandler(logging.StreamHandler):  # type: ignore[type-arg]  # IO[str] in typeshed only
    """Write each record as one JSON object on one line of a stream (``sys.stderr`` by default).

    Non-ASCII text is written as is (UTF-8). The ``formatter`` of the ini file is ignored.

    Args:
        stream: the text stream to write to.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        """Create the handler; ``stream`` defaults to ``sys.stderr`` like ``StreamHandler``."""
        super().__init__(stream)

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON object of ``record`` (without newline)."""
        return serialize(record).decode("utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        """Write the JSON line of ``record`` and flush; errors go to ``handleError``, never up."""
        try:
            line = serialize(record).decode("utf-8") + "\n"
            stream = self.stream
            try:
                stream.write(line)
            except UnicodeEncodeError:  # a stream that cannot write UTF-8: escape to ASCII
                stream.write(json.dumps(json.loads(line)) + "\n")
            flush = getattr(stream, "flush", None)
            if flush is not None:
                flush()
        except Exception:
            self.handleError(record)


class PyramidCeeSysLogHandler(logging.handlers.SysLogHandler):
    """Send each record to syslog (UDP by default) as ``@cee: <JSON>`` (the JSON of ``JsonLogHandler``).

    Takes the arguments of ``logging.handlers.SysLogHandler``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return ``: @cee: <JSON object of the record>``."""
        return ": @cee: " + serialize(record).decode("utf-8")
