"""The JSON object of a log record, as the handlers of :mod:`c2cwsgiutils.pyramid_logging` write it.

The fields, in this order: ``host``, ``msg``, ``timestamp``, ``level`` (a syslog severity),
``logger_name``, ``source_facility``, ``file``, ``line``, ``function``, ``pid``, ``thread_name``,
``process_name``, ``level_name``, then ``full_message`` and ``full_msg`` when the record has a
traceback or a stack, then the request's context (``client_addr``, ``method``, ``path``,
``request_id``, ``matched_route``, ``trace_id``), then every ``extra=`` attribute of the record;
an extra named like a fixed field is written as ``extra_<name>``.

Everything is read through the logging module's API: ``record.getMessage()``, the record's
documented attributes, ``logging.Formatter.formatException``/``formatStack`` for the traceback
(cached in ``record.exc_text`` as ``logging.Formatter.format`` does).
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import orjson

from c2cwsgiutils import _context
from c2cwsgiutils._redact import may_hold_secret, redact

__all__ = ["PROTECTED_FIELDS", "serialize"]

# Attributes every LogRecord has: everything else on a record came from ``extra=`` or a filter.
_STANDARD_ATTRIBUTES = frozenset(
    {*vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)), "message", "asctime", "taskName"}
)
PROTECTED_FIELDS = frozenset(
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
        "level_name",
    }
)
"""Fields an ``extra=`` attribute may not replace; a clashing extra is written as ``extra_<name>``."""

_SYSLOG_SEVERITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
# The options of the first try: dictionary keys are text, as they are in nearly every record; a
# record with other keys (in a nested extra) fails it and is written with OPT_NON_STR_KEYS, which
# gives the same document for text keys but is slower for every dictionary.
_OPTIONS_FAST = 0
_OPTIONS = orjson.OPT_NON_STR_KEYS
# Key of the per-request cache of the request fields in the WSGI environ.
_REQUEST_FIELDS_KEY = "c2cwsgiutils.pyramid_logging.fields"
_FORMATTER = logging.Formatter()

_host: str | None = None


def _get_host() -> str:
    # Resolved once per process, on first use: getfqdn may query the resolver.
    global _host  # noqa: PLW0603  # a process-wide cache of an immutable value
    if _host is None:
        _host = socket.getfqdn()
    return _host


def _severity(levelno: object) -> int:
    """Syslog severity of a level; custom levels get the one of the standard level just below."""
    if not isinstance(levelno, int):  # a hand-made record (logging.makeLogRecord) has no level
        return _SYSLOG_SEVERITY[logging.INFO]
    severity = _SYSLOG_SEVERITY.get(levelno)
    if severity is not None:
        return severity
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


def _full_message(record: logging.LogRecord, message: str) -> str:
    """Message, traceback and stack of the record, redacted (``message`` already is)."""
    parts = [message]
    try:
        if record.exc_info and not record.exc_text:
            # Cached on the record, as logging.Formatter.format does, for the other handlers.
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            parts.append(redact(record.exc_text))
        if record.stack_info:
            parts.append(redact(_FORMATTER.formatStack(record.stack_info)))
    except Exception:
        parts.append("<the traceback cannot be formatted>")
    # Redacted part by part: a secret value never spans the line break between two parts.
    return "\n".join(parts)


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
    try:
        message = record.getMessage()
    except Exception:
        message = f"{_safe_text(record.msg)} (cannot be formatted with {_safe_text(record.args)})"
    data: dict[str, Any] = {
        "host": _host or _get_host(),
        "msg": message,  # redacted below, with the text extras
        "timestamp": record.created,
        "level": _severity(record.levelno),
        "logger_name": record.name,
        "source_facility": record.name,
        "file": record.pathname,
        "line": record.lineno,
        "function": record.funcName,
        "pid": record.process,
        "thread_name": record.threadName,
        "process_name": record.processName,
        "level_name": record.levelname,
    }
    if record.exc_info or record.exc_text or record.stack_info:
        data["full_message"] = _full_message(record, redact(message))
        data["full_msg"] = "true"
    _add_context(data)
    # The message and the text extras are checked for secrets in one pass (may_hold_secret).
    texts = [message]
    extras: list[str] = []
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRIBUTES:
            json_name = f"extra_{key}" if key in PROTECTED_FIELDS else key
            data[json_name] = value
            if isinstance(value, str):
                texts.append(value)
                extras.append(json_name)
    if may_hold_secret("\0".join(texts)):
        data["msg"] = redact(message)
        for json_name in extras:
            data[json_name] = redact(data[json_name])
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


def _unreadable(record: logging.LogRecord) -> dict[str, Any]:
    """The fields written for a record that cannot be read."""
    return {
        "msg": _safe_text(getattr(record, "msg", "")),
        "level": 3,
        "logger_name": _safe_text(getattr(record, "name", "")),
        "full_msg": "the log record cannot be read",
    }


def serialize(record: logging.LogRecord, *, newline: bool = False) -> bytes:
    """Return the JSON object (UTF-8) of ``record``; never raises.

    Args:
        record: the log record.
        newline: end the document with a line feed.

    Returns:
        The JSON document.
    """
    try:
        data = _fields(record)
    except Exception:
        data = _unreadable(record)
    newline_option = orjson.OPT_APPEND_NEWLINE if newline else 0
    for options in (_OPTIONS_FAST, _OPTIONS):
        try:
            return orjson.dumps(data, _default, options | newline_option)
        except orjson.JSONEncodeError:  # the next try, then the values replaced by their text
            continue
    return orjson.dumps(_sanitized(data), _default, _OPTIONS | newline_option)
