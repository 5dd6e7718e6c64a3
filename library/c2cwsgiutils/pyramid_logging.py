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
from typing import IO, Any

from c2cwsgiutils import _settings
from c2cwsgiutils._json_record import serialize
from c2cwsgiutils._log_writer import BatchWriter, report_error

__all__ = [
    "DEFAULT_FLUSH_INTERVAL",
    "JsonLogHandler",
    "LoggingSettings",
    "PyramidCeeSysLogHandler",
    "serialize",
]


DEFAULT_FLUSH_INTERVAL = 0.0
"""Seconds a line of :class:`JsonLogHandler` may wait to be written with the next ones (see the class).

0: a line is written when it is logged, so that a process killed at once (the OOM killer's
``SIGKILL``) leaves the lines that explain it. Batching is an explicit choice.
"""


def _as_interval(value: object) -> float:
    try:
        interval = float(str(value).strip())
    except ValueError:
        interval = -1.0
    if not math.isfinite(interval) or interval < 0:
        msg = f"must be a number of seconds >= 0, got {value!r}"
        raise ValueError(msg)
    return interval


@_settings.frozen_dataclass
class LoggingSettings:
    """Settings of the JSON log handler (read when logging is configured, before any application)."""

    flush_interval: float = _settings.knob(
        DEFAULT_FLUSH_INTERVAL,
        env="C2C_LOG_FLUSH_INTERVAL",
        convert=_as_interval,
        doc="Seconds a JSON log line may wait to be written with the next ones (0: written when "
        "logged; a batch is lost on SIGKILL).",
    )


def _flush_interval(value: float | str | None) -> float:
    """The handler's interval: ``value``, else ``C2C_LOG_FLUSH_INTERVAL``, else the default."""
    if value is None:
        return float(_settings.resolve_one(LoggingSettings, "flush_interval", None))
    try:
        return _as_interval(value)
    except ValueError as error:
        raise ValueError(f"flush_interval {error}") from None


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

    def emit(self, record: logging.LogRecord) -> None:
        """Write the JSON line of ``record`` (or add it to the batch); errors go to ``handleError``."""
        try:
            line = self.format(record) + "\n"
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
