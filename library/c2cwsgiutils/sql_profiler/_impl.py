"""SQL profiler engine part: the plan of each distinct SELECT, logged once.

One ``before_cursor_execute`` listener is installed on the ``Engine`` class the first time the
profiler is enabled, and never removed: enabling and disabling only flip a flag under a lock, so
no thread mutates SQLAlchemy's event registry while others run queries.

The plan is computed on the same connection, inside a savepoint that is always rolled back: the
analysed statement sees the same data as the real one. ``EXPLAIN ANALYZE`` runs the statement a
second time, and a rollback does not undo everything (a sequence's ``nextval``, an advisory
lock): only the statements that :mod:`~c2cwsgiutils.sql_profiler._side_effects` finds safe to
run twice are analysed, the others get a plain ``EXPLAIN`` and the log line says why. Errors
never reach the application.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import sqlalchemy
import sqlalchemy.event

from c2cwsgiutils.sql_profiler import _side_effects

__all__ = ["Profiler", "profiler"]

_LOG = logging.getLogger(__name__)
_SELECT = re.compile(r"^\s*SELECT\s", re.IGNORECASE)
_SELECT_LIST = re.compile(r"^\s*SELECT\s.*?\sFROM\s", re.IGNORECASE | re.DOTALL)
_BREAKS = re.compile(
    r"\s+(FROM|(?:LEFT |RIGHT |FULL |INNER |CROSS )?(?:OUTER )?JOIN|ON|WHERE|GROUP BY|ORDER BY|LIMIT)\s"
)
_SAVEPOINT = "c2c_sql_profiler"
DEFAULT_MAX_STATEMENTS = 1000


def format_statement(statement: str) -> str:
    """Shorten a SELECT for the log: ``SELECT ...``, one line per clause, indented."""
    text = " ".join(statement.split())
    text = _SELECT_LIST.sub("SELECT ... FROM ", text, count=1)
    return "  " + _BREAKS.sub(lambda match: "\n  " + match.group(1) + " ", text)


class Profiler:
    """The profiler of the process (see :data:`profiler`).

    Args:
        max_statements: Number of distinct statements remembered; once reached, new statements
            are not analysed any more (bounded memory).
    """

    def __init__(self, max_statements: int = DEFAULT_MAX_STATEMENTS) -> None:
        """Create a disabled profiler."""
        self.max_statements = max_statements
        self._lock = threading.Lock()
        self._enabled = False
        self._installed = False
        self._seen: set[str] = set()
        self._full_logged = False

    @property
    def enabled(self) -> bool:
        """Whether the profiler analyses the SELECTs of this process."""
        return self._enabled

    def enable(self) -> None:
        """Start analysing (the listener is installed once per process)."""
        with self._lock:
            if not self._installed:
                sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", self._listener)
                self._installed = True
            self._enabled = True
        _LOG.info("SQL profiler enabled")

    def disable(self) -> None:
        """Stop analysing (the listener stays, it returns at once)."""
        with self._lock:
            self._enabled = False
        _LOG.info("SQL profiler disabled")

    def clear(self) -> None:
        """Forget the statements already analysed."""
        with self._lock:
            self._seen.clear()
            self._full_logged = False

    def _claim(self, statement: str) -> bool:
        """Remember ``statement``; True if it is new and the profiler is still enabled."""
        with self._lock:
            if not self._enabled or statement in self._seen:
                return False
            if len(self._seen) >= self.max_statements:
                if not self._full_logged:
                    self._full_logged = True
                    _LOG.warning("SQL profiler: %d statements analysed, ignoring new ones", len(self._seen))
                return False
            self._seen.add(statement)
            return True

    def _listener(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        del cursor, context
        if (
            not self._enabled
            or executemany
            or conn.dialect.name != "postgresql"
            or not _SELECT.match(statement)
            or not _LOG.isEnabledFor(logging.INFO)
            or not self._claim(statement)
        ):
            return
        try:
            plan, skipped = _explain(conn, statement, parameters)
        except Exception as error:
            _LOG.info("SQL profiler: cannot analyse the statement: %s", error)
            return
        _LOG.info(
            "statement:\n%s\nparameters: %r\n%s%s",
            format_statement(statement),
            parameters,
            "" if skipped is None else f"ANALYZE skipped, plan without execution: {skipped}\n",
            "\n".join("    " + line for line in plan),
            extra={} if skipped is None else {"analyze_skipped": skipped},
        )


def _explain(conn: Any, statement: str, parameters: Any) -> tuple[list[str], str | None]:
    """Return the plan and why ANALYZE was skipped (None: it ran).

    Everything runs in a savepoint of the statement's connection, always rolled back.
    """
    parameters = parameters or None
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            skipped = _side_effects.by_text(statement)
            if skipped is None:
                skipped = _side_effects.by_plan(cursor, statement, parameters)
            cursor.execute(("EXPLAIN " if skipped else "EXPLAIN ANALYZE ") + statement, parameters)
            return [str(row[0]) for row in cursor.fetchall()], skipped
        finally:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    finally:
        cursor.close()


#: The profiler of this process.
profiler = Profiler()
