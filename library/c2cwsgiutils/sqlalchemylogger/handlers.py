"""A logging handler that writes the records to a database table, in batches, from a thread.

In the ``[handler_…]`` section of a logging configuration::

    [handler_sqlalchemy]
    class = c2cwsgiutils.sqlalchemylogger.handlers.SQLAlchemyHandler
    args = ({"url": "postgresql://user:password@db/logs", "tablename": "logs",
             "tableargs": {"schema": "logging"}}, "curl")
    level = INFO

The second argument, ``does_not_contain_expression``, drops the records whose message matches
that regular expression; the third one, ``contains_expression``, keeps only the records whose
message matches.

Records are queued by the logging call (which does not wait for the database) and inserted by a
background daemon thread, in batches of at most :attr:`SQLAlchemyHandler.MAX_NB_LOGS` records,
at most :attr:`SQLAlchemyHandler.MAX_TIMEOUT` seconds after they were logged. The table (and its
schema) is created when missing; the database too if SQLAlchemy-Utils is installed.
:meth:`~SQLAlchemyHandler.flush` and :meth:`~SQLAlchemyHandler.close` (called by
:func:`logging.shutdown` at exit) write every queued record before they return. While the
database is unreachable, records are kept (up to :attr:`SQLAlchemyHandler.MAX_QUEUE`) and
written when it is back.

.. versionadded:: 6.0
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.schema import CreateSchema

from c2cwsgiutils.sqlalchemylogger._filters import ContainsExpression, DoesNotContainExpression
from c2cwsgiutils.sqlalchemylogger._models import create_log_table

__all__ = ["SQLAlchemyHandler"]

_LOG = logging.getLogger(__name__)
_FORMATTER = logging.Formatter()
_HANDLERS: weakref.WeakSet[SQLAlchemyHandler] = weakref.WeakSet()


class _Flush:
    """Queue marker: the records queued before it are written, then ``done`` is set."""

    def __init__(self, stop: bool = False) -> None:
        self.stop = stop
        self.done = threading.Event()


class SQLAlchemyHandler(logging.Handler):
    """Write log records in a database table (``id, logger, level, trace, msg, created_at``).

    Args:
        sqlalchemy_url: ``{"url": <SQLAlchemy URL>, "tablename": <name, default "logs">,
            "tableargs": <table arguments, e.g. {"schema": "logs"}>}``.
        does_not_contain_expression: if not empty, drop the records whose message matches this
            regular expression.
        contains_expression: if not empty, keep only the records whose message matches this
            regular expression.
    """

    MAX_NB_LOGS = 100
    """The most records inserted in one batch."""
    MAX_TIMEOUT = 1.0
    """The most time (seconds) a record waits in the queue before its batch is written."""
    MAX_QUEUE = 10_000
    """The most records waiting to be written; more are dropped (and counted) while the database is down."""
    FLUSH_TIMEOUT = 30.0
    """The most time (seconds) :meth:`flush` and :meth:`close` wait for the writer thread."""

    def __init__(
        self,
        sqlalchemy_url: Mapping[str, Any],
        does_not_contain_expression: str = "",
        contains_expression: str = "",
    ) -> None:
        """Declare the table and the filters; nothing connects to the database before the first record."""
        super().__init__()
        self.engine = sqlalchemy.create_engine(sqlalchemy_url["url"], pool_pre_ping=True)
        self.table = create_log_table(
            sqlalchemy.MetaData(), sqlalchemy_url.get("tablename", "logs"), sqlalchemy_url.get("tableargs")
        )
        if does_not_contain_expression:
            self.addFilter(DoesNotContainExpression(does_not_contain_expression))
        if contains_expression:
            self.addFilter(ContainsExpression(contains_expression))
        self.dropped = 0
        self._reset_state()
        self._closed = False
        _HANDLERS.add(self)

    def _reset_state(self) -> None:
        self._state_lock = threading.Lock()
        self._queue: queue.Queue[dict[str, Any] | _Flush] = queue.Queue(self.MAX_QUEUE)
        self._thread: threading.Thread | None = None
        self._writer_ident: int | None = None
        self._failing = False
        self._table_ready = False

    def _after_fork_in_child(self) -> None:
        # The parent's writer thread does not exist in the child and its queued records are
        # the parent's to write; the pooled connections are the parent's too.
        self._reset_state()
        self.engine.dispose(close=False)

    @property
    def _url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # Logging side (any thread)

    def handle(self, record: logging.LogRecord) -> Any:
        """Queue the record, unless the writer thread logged it.

        The writer's own records (SQLAlchemy's logs, its error messages) are not written to the
        database: they could loop, and :meth:`flush` holds the handler's lock while it waits for
        the writer.
        """
        if threading.get_ident() == self._writer_ident:
            return False
        return super().handle(record)

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record for the writer thread."""
        try:
            row = self._row(record)
            if not self._start_writer():
                self.dropped += 1
                return
            self._queue.put_nowait(row)
        except queue.Full:
            self.dropped += 1
        except Exception:
            self.handleError(record)

    @staticmethod
    def _row(record: logging.LogRecord) -> dict[str, Any]:
        trace = None
        # The record's own exception (logged with exc_info), not whatever is being handled now.
        if record.exc_info and record.exc_info[0] is not None:
            trace = _FORMATTER.formatException(record.exc_info)
        elif record.exc_text:
            trace = record.exc_text
        if record.stack_info:
            stack = _FORMATTER.formatStack(record.stack_info)
            trace = f"{trace}\n{stack}" if trace else stack
        return {
            "logger": record.name,
            "level": record.levelname,
            "trace": _text(trace),
            "msg": _text(record.getMessage()),
            "created_at": dt.datetime.fromtimestamp(record.created, tz=dt.UTC),
        }

    def _start_writer(self) -> bool:
        with self._state_lock:
            if self._closed:
                return False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="c2cwsgiutils-sqlalchemylogger", daemon=True
                )
                self._thread.start()
            return True

    def flush(self) -> None:
        """Write every record queued so far, waiting at most :attr:`FLUSH_TIMEOUT` seconds."""
        self._send(_Flush())

    def close(self) -> None:
        """Write every queued record, stop the writer thread and close the database connections."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._send(_Flush(stop=True), thread)
            thread.join(self.FLUSH_TIMEOUT)
        self.engine.dispose()
        super().close()

    def _send(self, marker: _Flush, thread: threading.Thread | None = None) -> None:
        thread = self._thread if thread is None else thread
        if thread is None or not thread.is_alive() or threading.get_ident() == self._writer_ident:
            return
        try:
            self._queue.put(marker, timeout=self.FLUSH_TIMEOUT)
        except queue.Full:
            return
        marker.done.wait(self.FLUSH_TIMEOUT)

    # Writer thread

    def _run(self) -> None:
        self._writer_ident = threading.get_ident()
        pending: list[dict[str, Any]] = []
        deadline = 0.0
        while True:
            timeout = max(0.0, deadline - time.monotonic()) if pending else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if isinstance(item, _Flush):
                pending = self._write(pending)
                if item.stop:
                    if pending:
                        sys.stderr.write(
                            f"c2cwsgiutils: {len(pending)} log records could not be written to {self._url}\n"
                        )
                    item.done.set()
                    return
                item.done.set()
                continue
            if item is not None:
                if not pending:
                    deadline = time.monotonic() + self.MAX_TIMEOUT
                pending.append(item)
                if len(pending) < self.MAX_NB_LOGS and time.monotonic() < deadline:
                    continue
            pending = self._write(pending)
            if pending:  # the database is down: try again later
                deadline = time.monotonic() + self.MAX_TIMEOUT

    def _write(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the rows; return those to try again (the database could not be reached)."""
        if not rows:
            return rows
        try:
            if not self._table_ready:
                self._create_table()
            self._insert(rows)
        except Exception as error:  # the writer thread must survive anything
            return self._write_failed(rows, error)
        if self._failing:
            self._failing = False
            _LOG.warning("Writing the logs to %s works again", self._url)
        return []

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(self.table.insert(), rows)
        except (sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError):
            # The table (or schema, or database) may have been dropped since: create it and retry.
            self._table_ready = False
            self._create_table()
            with self.engine.begin() as connection:
                connection.execute(self.table.insert(), rows)

    def _write_failed(self, rows: list[dict[str, Any]], error: Exception) -> list[dict[str, Any]]:
        if not self._failing:
            self._failing = True
            _LOG.error("Cannot write %d log records to %s: %s", len(rows), self._url, error)
        unreachable = isinstance(error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError) or (
            isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated
        )
        if not unreachable:  # the rows themselves are refused: keeping them would block the others
            self.dropped += len(rows)
            return []
        if len(rows) > self.MAX_QUEUE:
            self.dropped += len(rows) - self.MAX_QUEUE
            rows = rows[-self.MAX_QUEUE :]
        return rows

    def _create_table(self) -> None:
        try:
            self._create_schema_and_table()
        except sqlalchemy.exc.OperationalError:
            if not self._create_database():
                raise
            self._create_schema_and_table()
        self._table_ready = True

    def _create_schema_and_table(self) -> None:
        with self.engine.begin() as connection:
            schema = self.table.schema
            if schema is not None and not sqlalchemy.inspect(connection).has_schema(schema):
                connection.execute(CreateSchema(schema, if_not_exists=True))
            self.table.metadata.create_all(connection, checkfirst=True)

    def _create_database(self) -> bool:
        """Create the database if it does not exist; return whether it was created."""
        try:
            sqlalchemy_utils: Any = importlib.import_module("sqlalchemy_utils")
        except ImportError:
            if not self._failing:
                _LOG.error(
                    "Cannot connect to %s; if the database does not exist, create it, or install "
                    "SQLAlchemy-Utils (pip install SQLAlchemy-Utils) to have it created",
                    self._url,
                )
            return False
        try:
            if sqlalchemy_utils.database_exists(self.engine.url):
                return False
            sqlalchemy_utils.create_database(self.engine.url)
        except sqlalchemy.exc.SQLAlchemyError:
            return False
        _LOG.info("Created the database %s for the logs", self._url)
        return True


def _text(value: str | None) -> str | None:
    # PostgreSQL refuses NUL characters in text values: one of them would lose the whole batch.
    return value.replace("\x00", "\\x00") if value is not None else None


def _after_fork_in_child() -> None:
    for handler in list(_HANDLERS):
        handler._after_fork_in_child()  # noqa: SLF001  # the module's own handlers


os.register_at_fork(after_in_child=_after_fork_in_child)
