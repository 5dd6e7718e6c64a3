"""Logging handlers that write one JSON object per record, with the request's context.

Both handlers serialise a record the same way: the fixed fields of the reference (``host``,
``msg``, ``full_message``/``full_msg`` when a traceback is present, ``timestamp``, ``level`` as a
syslog severity, ``logger_name``, ``source_facility``, ``file``, ``line``, ``function``, ``pid``,
``thread_name``, ``process_name``, ``level_name``), then, when a Pyramid request is being handled
in the current context, ``client_addr``, ``method``, ``matched_route``, ``path``, ``request_id``
and ``trace_id``, then every ``extra=`` attribute of the record. An extra named like a fixed field
is written as ``extra_<name>``: it never replaces one.

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
import math
import operator
import os
import socket
import sys
import traceback
from typing import IO, Any

import orjson

from c2cwsgiutils import _context
from c2cwsgiutils._log_writer import BatchWriter, report_error
from c2cwsgiutils._redact import may_hold_secret, redact

__all__ = ["DEFAULT_FLUSH_INTERVAL", "JsonLogHandler", "PyramidCeeSysLogHandler", "serialize"]

# Attributes of a new LogRecord of this Python version.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)))
_RECORD_LENGTH = len(_RECORD_ATTRIBUTES)
# Attributes every LogRecord has: everything else on a record came from ``extra=`` or a filter.
_STANDARD_ATTRIBUTES = frozenset({*_RECORD_ATTRIBUTES, "message", "asctime", "taskName"})
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
        "level_name",
    }
)
_SYSLOG_SEVERITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
# Attributes of a new record that _fields reads by key in every case (a missing one raises KeyError).
_READ_ATTRIBUTES = frozenset(
    {"name", "levelno", "created", "pathname", "lineno", "funcName", "process", "threadName"}
    | {"processName", "levelname", "exc_info"}
)
# Raises KeyError unless the record has all the other attributes of a new record (see _fields).
_HAS_OTHER_ATTRIBUTES = operator.itemgetter(*sorted(_RECORD_ATTRIBUTES - _READ_ATTRIBUTES))
# The options of the first try: dictionary keys are text, as they are in nearly every record; a
# record with other keys (in a nested extra) fails it and is written with OPT_NON_STR_KEYS, which
# gives the same document for text keys but is slower for every dictionary.
_OPTIONS_FAST = 0
_OPTIONS_FAST_NEWLINE = orjson.OPT_APPEND_NEWLINE
_OPTIONS = orjson.OPT_NON_STR_KEYS
_OPTIONS_NEWLINE = _OPTIONS | orjson.OPT_APPEND_NEWLINE
# Key of the per-request cache of the request fields in the WSGI environ.
_REQUEST_FIELDS_KEY = "c2cwsgiutils.pyramid_logging.fields"
_TRACEBACK_FORMATTER = logging.Formatter()
# The extras of a record by the names of its attributes, in order (its "shape"): (attribute,
# JSON name) of each extra attribute, see _extras. Bounded.
_EXTRAS: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}
_EXTRAS_MAX = 4096
# The shape and extras of the last record that had extras: most records with extras come from the
# same few calls, and comparing two shapes costs less than hashing one. Replaced as a whole.
_last_extras: tuple[tuple[str, ...], tuple[tuple[str, str], ...]] = ((), ())
_LogRecord = logging.LogRecord
# The fields of a record that only depend on where and by whom it was logged: its level, logger,
# code position, process and thread (the key, read from the record with _SITE_KEY). They are
# serialised once per key, as the members from "level" to "level_name" (see _site_fragment). Bounded.
# Keys compare by value, as dictionary keys do: a hand-made record whose line is 1.0 (or True) may be
# written with the entry of an equal key, as line 1. Real records have int levels, lines and pids.
_SITE_KEY = operator.itemgetter(
    "levelno", "name", "pathname", "lineno", "funcName", "process", "threadName", "processName", "levelname"
)
_SITES: dict[tuple[Any, ...], orjson.Fragment] = {}
_SITES_MAX = 2048
_SITE_PREFIX = b'{"level":'
# Bound methods, looked up once: the context variables are never replaced.
_get_current_request = _context.current_request.get
_get_current_trace = _context.current_trace.get

# Since Python 3.12, Filterer.filter returns the record (or a replacement) instead of True.
_FILTER_RETURNS_RECORD = sys.version_info >= (3, 12)

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


class _CachedStackSummary(traceback.StackSummary):
    """A ``StackSummary`` that formats each code position once per process.

    ``StackSummary.format_frame_summary`` reads the source line and, since Python 3.11, parses it
    to place the ``^^^`` markers: most of the cost of a traceback. Its text only depends on the
    position (file, lines, columns, function), so it is kept in a bounded cache; the output is
    the standard library's, character for character.
    """

    def format_frame_summary(self, frame_summary: traceback.FrameSummary) -> str:
        """Return the cached text of ``frame_summary`` (computed by the standard library once)."""
        if frame_summary.locals is not None:
            return super().format_frame_summary(frame_summary)
        key = (
            frame_summary.filename,
            frame_summary.lineno,
            frame_summary.end_lineno,
            frame_summary.colno,
            frame_summary.end_colno,
            frame_summary.name,
        )
        text = _FRAME_TEXTS.get(key)
        if text is None:
            text = super().format_frame_summary(frame_summary)
            if len(_FRAME_TEXTS) >= _FRAME_TEXTS_MAX:
                _FRAME_TEXTS.clear()
            _FRAME_TEXTS[key] = text
        return text


# Text of a traceback frame by code position (see _CachedStackSummary), bounded.
_FRAME_TEXTS: dict[tuple[object, ...], str] = {}
_FRAME_TEXTS_MAX = 4096
# "Traceback (most recent call last):" and the frames of a traceback, plain and redacted, by the
# positions of its frames: (id(code), last instruction, line) each. The value keeps the code
# objects alive, so that their ids cannot be reused while the entry exists. Bounded.
_STACK_TEXTS: dict[tuple[int, ...], tuple[tuple[object, ...], str, str]] = {}
_STACK_TEXTS_MAX = 1024
_TRACEBACK_HEADER = "Traceback (most recent call last):\n"


def _cached_stack(exception: traceback.TracebackException) -> None:
    """Make ``exception``, its chain and the members of its groups format frames from the cache."""
    pending = [exception]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = _CachedStackSummary(current.stack)
        pending.extend(chained for chained in (current.__cause__, current.__context__) if chained is not None)
        pending.extend(current.exceptions or ())


def _stack_texts(exc_value: BaseException, exc_traceback: Any) -> tuple[str, str]:
    """The header and frames of a traceback without chained exceptions, plain and redacted."""
    key: list[int] = []
    codes: list[object] = []
    tb = exc_traceback
    while tb is not None:
        code = tb.tb_frame.f_code
        key += (id(code), tb.tb_lasti, tb.tb_lineno)
        codes.append(code)
        tb = tb.tb_next
    frozen_key = tuple(key)
    cached = _STACK_TEXTS.get(frozen_key)
    if cached is None:
        exception = traceback.TracebackException(
            type(exc_value), exc_value, exc_traceback, lookup_lines=False, compact=True
        )
        plain = _TRACEBACK_HEADER + "".join(_CachedStackSummary(exception.stack).format())
        if len(_STACK_TEXTS) >= _STACK_TEXTS_MAX:
            _STACK_TEXTS.clear()
        cached = _STACK_TEXTS[frozen_key] = (tuple(codes), plain, redact(plain))
    return cached[1], cached[2]


def _exception_texts(exc_info: Any) -> tuple[str, str]:
    """``logging.Formatter.formatException(exc_info)`` (the same text) and its redacted version.

    Formatting a traceback is most of the cost of a record with ``exc_info``: the text of each
    frame is cached by code position, and the whole list of frames of an exception without
    cause or context by the positions of its frames; only the last line (the exception and its
    message) is formatted and redacted for each record. Source lines are read once per position,
    without the ``linecache.checkcache`` file checks of each traceback.
    """
    _, exc_value, exc_traceback = exc_info
    if not isinstance(exc_value, BaseException):
        plain = _TRACEBACK_FORMATTER.formatException(exc_info)
        return plain, redact(plain)
    if (
        exc_traceback is not None
        and exc_value.__cause__ is None
        and (exc_value.__context__ is None or exc_value.__suppress_context__)
        and not isinstance(exc_value, BaseExceptionGroup)
        and getattr(sys, "tracebacklimit", None) is None
    ):
        stack_plain, stack_redacted = _stack_texts(exc_value, exc_traceback)
        last = "".join(traceback.format_exception_only(type(exc_value), exc_value)).removesuffix("\n")
        return stack_plain + last, stack_redacted + redact(last)
    exception = traceback.TracebackException(
        type(exc_value), exc_value, exc_traceback, lookup_lines=False, compact=True
    )
    _cached_stack(exception)
    plain = "".join(exception.format()).removesuffix("\n")
    return plain, redact(plain)


def _full_message(record: logging.LogRecord, message: str) -> str:
    """Message, traceback and stack of the record, redacted (``message`` already is)."""
    parts = [message]
    try:
        if record.exc_info and not record.exc_text:
            plain, redacted = _exception_texts(record.exc_info)
            # Cached on the record, as logging.Formatter does, for the other handlers.
            record.exc_text = plain
            parts.append(redacted)
        elif record.exc_text:
            parts.append(redact(record.exc_text))
        if record.stack_info:
            parts.append(redact(_TRACEBACK_FORMATTER.formatStack(record.stack_info)))
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


def _extras(shape: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The extra attributes of a record whose attributes are ``shape``, with their JSON names, cached.

    An extra attribute is written as ``extra_<name>`` when it would replace a fixed field.
    """
    extras = tuple(
        (key, f"extra_{key}" if key in _PROTECTED_FIELDS else key)
        for key in shape
        if key not in _STANDARD_ATTRIBUTES
    )
    if len(_EXTRAS) >= _EXTRAS_MAX:
        _EXTRAS.clear()
    _EXTRAS[shape] = extras
    return extras


def _site_fragment(key: tuple[Any, ...]) -> orjson.Fragment:
    """The members from ``"level"`` to ``"level_name"`` of a record whose ``_SITE_KEY`` is ``key``.

    Returns the value of ``"level"`` followed by the other members, as JSON: written as the value
    of the ``"level"`` member, it gives the members in their order, as if each had its own key.
    """
    levelno, name, pathname, lineno, function, process, thread_name, process_name, level_name = key
    members = {
        "level": _SYSLOG_SEVERITY.get(levelno) or _custom_severity(levelno),
        "logger_name": name,
        "source_facility": name,
        "file": pathname,
        "line": lineno,
        "function": function,
        "pid": process,
        "thread_name": thread_name,
        "process_name": process_name,
        "level_name": level_name,
    }
    try:
        text = orjson.dumps(members, _default, _OPTIONS_FAST)
    except Exception:
        text = _dumps(members, _OPTIONS)
    return orjson.Fragment(text[len(_SITE_PREFIX) : -1])


def _site(key: tuple[Any, ...]) -> orjson.Fragment:
    """:func:`_site_fragment`, cached in ``_SITES``."""
    fragment = _site_fragment(key)
    if len(_SITES) >= _SITES_MAX:
        _SITES.clear()
    _SITES[key] = fragment
    return fragment


def _add_context(data: dict[str, Any], request: Any, trace: tuple[str, str, str] | None) -> None:
    if request is not None:
        data.update(_request_fields(request))
        route = getattr(request, "matched_route", None)
        if route is not None:
            data["matched_route"] = route.name
    if trace is not None:
        data["trace_id"] = trace[0]


def _fields(record: logging.LogRecord) -> dict[str, Any]:  # noqa: C901, PLR0912, PLR0915  # hot path in one piece
    # Read from the record's __dict__: a dictionary lookup is cheaper than an attribute lookup.
    attributes = vars(record)
    try:
        if type(record) is _LogRecord:
            # LogRecord.getMessage, without the call (a tenth of the handler's cost); a subclass
            # may format differently (a record factory for str.format messages): its own method.
            message = attributes["msg"]
            if type(message) is not str:
                message = str(message)
            args = attributes["args"]
            if args:
                message %= args
        else:
            message = record.getMessage()
    except Exception:
        message = f"{_safe_text(record.msg)} (cannot be formatted with {_safe_text(record.args)})"
    # No extras when the record has exactly the attributes of a new record: it has those read
    # below (_READ_ATTRIBUTES, or KeyError), so the same count and the others are enough to know.
    # Otherwise the extras, in the order they were given, cached by the record's attribute names.
    extras: tuple[tuple[str, str], ...] | None = None
    if len(attributes) == _RECORD_LENGTH:
        try:
            _HAS_OTHER_ATTRIBUTES(attributes)
        except KeyError:
            pass
        else:
            extras = ()
    if extras is None:
        global _last_extras  # noqa: PLW0603  # a cache: the shape and extras of the last record with extras
        shape = tuple(attributes)
        last_shape, extras = _last_extras
        if shape != last_shape:
            try:
                extras = _EXTRAS[shape]
            except KeyError:
                extras = _extras(shape)
            _last_extras = (shape, extras)
    # A call is ~1 % of the cost of a record: the steps are inline.
    site_key = _SITE_KEY(attributes)
    try:
        site = _SITES[site_key]
    except KeyError:
        site = _site(site_key)
    except TypeError:  # a hand-made record with an unhashable value: not cached
        site = _site_fragment(site_key)
    data: dict[str, Any] = {
        "host": _host or _get_host(),
        # Redacted below with the text extras when there are extras.
        "msg": message if extras else redact(message),
        "timestamp": attributes["created"],
        # The members from "level" to "level_name", already serialised.
        "level": site,
    }
    if attributes["exc_info"] or attributes["exc_text"] or attributes["stack_info"]:
        data["full_message"] = _full_message(record, redact(message))
        data["full_msg"] = "true"
    request = _get_current_request()
    trace = _get_current_trace()
    if request is not None or trace is not None:
        _add_context(data, request, trace)
    if extras:
        # The message and the text extras are checked for secrets in one pass (may_hold_secret).
        texts = [message]
        for key, json_name in extras:
            value = data[json_name] = attributes[key]
            if isinstance(value, str):
                texts.append(value)
        if may_hold_secret("\0".join(texts)):
            _redact_texts(data, message, extras)
    return data


def _redact_texts(data: dict[str, Any], message: str, extras: tuple[tuple[str, str], ...]) -> None:
    """Redact the message and the text extras of ``data`` (the record's fields)."""
    data["msg"] = redact(message)
    for _, json_name in extras:
        value = data[json_name]
        if isinstance(value, str):
            data[json_name] = redact(value)


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


def _dumps(data: dict[str, Any], options: int) -> bytes:
    """``data`` as JSON with ``options``, after the fast try (``_OPTIONS_FAST``) failed."""
    try:
        return orjson.dumps(data, _default, options)
    except Exception:
        return orjson.dumps(_sanitized(data), _default, options)


def serialize(record: logging.LogRecord, *, newline: bool = False) -> bytes:
    """Return the JSON object (UTF-8) that the handlers write for ``record``.

    Never raises: a record whose fields cannot be serialised still gives an object with its
    message and level.

    Args:
        record: the log record.
        newline: end the document with a line feed.

    Returns:
        The JSON document.
    """
    return _serialize(record, newline)


def _serialize(record: logging.LogRecord, newline: bool) -> bytes:  # hot path: positional
    """:func:`serialize`, with ``newline`` passed by position (a cheaper call)."""
    try:
        data = _fields(record)
    except Exception:
        data = _unreadable(record)
    try:
        return orjson.dumps(data, _default, _OPTIONS_FAST_NEWLINE if newline else _OPTIONS_FAST)
    except Exception:
        return _dumps(data, _OPTIONS_NEWLINE if newline else _OPTIONS)


DEFAULT_FLUSH_INTERVAL = 0.0
"""Seconds a line of :class:`JsonLogHandler` may wait to be written with the next ones (see the class).

0: a line is written when it is logged, so that a process killed at once (the OOM killer's
``SIGKILL``) leaves the lines that explain it. Batching is an explicit choice.
"""

_FLUSH_INTERVAL_ENV = "C2C_LOG_FLUSH_INTERVAL"


def _flush_interval(value: float | str | None) -> float:
    """The handler's interval: ``value``, else ``C2C_LOG_FLUSH_INTERVAL``, else the default."""
    if value is None:
        value = os.environ.get(_FLUSH_INTERVAL_ENV, "").strip() or DEFAULT_FLUSH_INTERVAL
    try:
        interval = float(value)
    except (TypeError, ValueError):
        interval = -1.0
    if not math.isfinite(interval) or interval < 0:
        msg = f"{_FLUSH_INTERVAL_ENV} (flush_interval) must be a number of seconds >= 0, got {value!r}"
        raise ValueError(msg)
    return interval


def _ascii_lines(text: str) -> str:
    """Lines of JSON with non-ASCII characters escaped, for a stream that cannot write UTF-8."""
    # Split on line feeds only: the JSON text may hold other line separators (U+2028).
    return "".join(json.dumps(json.loads(line)) + "\n" for line in text.split("\n") if line)


def _has_file_descriptor(stream: Any) -> bool:
    """Whether writing to ``stream`` is a system call (a file, a pipe, a terminal)."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: an in-memory stream
        return False
    return True


class JsonLogHandler(logging.StreamHandler):  # type: ignore[type-arg]  # IO[str] in typeshed only
    """Write each record as one JSON object on one line of a stream (``sys.stderr`` by default).

    Non-ASCII text is written as is (UTF-8). The ``formatter`` of the ini file is ignored.

    By default every record is written and flushed before ``emit`` returns. With a
    ``flush_interval`` (or ``C2C_LOG_FLUSH_INTERVAL``) above 0, on a stream with a file descriptor
    (stdout, stderr, a file), the lines are written by a thread of the process, in one write per
    batch, ``flush_interval`` seconds after the first line of the batch
    (``c2cwsgiutils._log_writer``): a write is a system call, which releases the GIL and hands a
    multi-threaded worker to its other threads and back on every record. Lines keep their order;
    ``flush()`` (called by ``logging.shutdown`` at exit) writes what is pending; but a process
    killed without exiting (``SIGKILL``, the OOM killer) loses the lines of its last interval.

    Args:
        stream: the text stream to write to.
        flush_interval: seconds a line may wait (default: ``C2C_LOG_FLUSH_INTERVAL``, else
            :data:`DEFAULT_FLUSH_INTERVAL`, 0); ``0`` writes each record at once.
    """

    def __init__(self, stream: IO[str] | None = None, flush_interval: float | None = None) -> None:
        """Create the handler; ``stream`` defaults to ``sys.stderr`` like ``StreamHandler``."""
        super().__init__(stream)
        self._flush_interval = _flush_interval(flush_interval)
        self._writer = self._new_writer()

    def _new_writer(self) -> BatchWriter | None:
        if self._flush_interval and _has_file_descriptor(self.stream):
            return BatchWriter(self._write, self._flush_interval)
        return None

    def _write(self, text: str) -> None:
        """Write lines of JSON to the stream and flush it (one line, or the batch of the writer)."""
        stream = self.stream
        try:
            stream.write(text)
        except UnicodeEncodeError:
            stream.write(_ascii_lines(text))
        flush = getattr(stream, "flush", None)
        if flush is not None:
            flush()

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON object of ``record`` (without newline)."""
        return serialize(record).decode("utf-8")

    def handle(self, record: logging.LogRecord) -> Any:  # bool, or the record since Python 3.12
        """Emit ``record`` under the handler's lock unless a filter drops it, as ``Handler.handle``.

        A handler without filters takes the lock directly: the steps of ``Handler.handle`` without
        the calls of ``filter``, ``acquire`` and ``release``, a few percent of a record's cost.
        """
        lock = self.lock
        if self.filters or lock is None:
            return super().handle(record)
        # acquire/release rather than "with": half the cost on Python 3.11.
        lock.acquire()
        try:
            self.emit(record)
        finally:
            lock.release()
        # What Handler.handle returns when no filter drops the record.
        return record if _FILTER_RETURNS_RECORD else True

    def emit(self, record: logging.LogRecord) -> None:
        """Write the JSON line of ``record`` (or add it to the batch); errors go to ``handleError``."""
        try:
            line = _serialize(record, True).decode()  # positional: a cheaper call
            writer = self._writer
            if writer is None:
                self._write(line)
            else:
                writer.write(line)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Write the pending lines and flush the stream."""
        writer = self._writer
        if writer is None:
            super().flush()
            return
        try:
            writer.flush()
        except Exception:  # as a failed write of the thread: reported, never raised
            report_error()

    def setStream(self, stream: IO[str]) -> IO[str] | None:  # noqa: N802  # logging's name
        """Write the pending lines to the current stream, then use ``stream``; return the previous one."""
        self.flush()
        previous = super().setStream(stream)
        if previous is not None:
            writer, self._writer = self._writer, self._new_writer()
            if writer is not None:
                writer.close()
        return previous

    def close(self) -> None:
        """Write the pending lines and stop the writing thread."""
        writer = self._writer
        if writer is not None:
            try:
                writer.close()
            except Exception:
                report_error()
        super().close()


class PyramidCeeSysLogHandler(logging.handlers.SysLogHandler):
    """Send each record to syslog (UDP by default) as ``@cee: <JSON>`` (the JSON of ``JsonLogHandler``).

    Takes the arguments of ``logging.handlers.SysLogHandler``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return ``: @cee: <JSON object of the record>``."""
        return ": @cee: " + serialize(record).decode("utf-8")
