"""SQL statement timing: ``database_seconds{what, engine}`` from SQLAlchemy's cursor events.

The listeners are added once per process on the ``Engine`` and ``Session`` classes (never added
nor removed per statement): the start time is kept on the statement's execution context, so a
failed statement cannot mislabel the next one.
"""

from __future__ import annotations

import re
import threading
import time
from types import ModuleType
from typing import Any

from c2cwsgiutils import _metrics, _post_import
from c2cwsgiutils._safety import swallow

__all__ = ["install", "simplify"]

_MAX_LENGTH = 200
_START = "_c2c_stats_start"
_SESSION_START = "c2cwsgiutils.stats.commit_start"
_LOCK = threading.Lock()
_INSTALLED = False

_SUBSTITUTIONS = (
    (re.compile(r"\s+"), " "),
    (re.compile(r"'(?:[^']|'')*'"), "?"),  # string literals
    (re.compile(r"%\(\w+\)s|%s|(?<![:\w]):\w+|\$\d+|\?"), "?"),  # bind parameters
    (re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?\b"), "?"),  # numbers
    (re.compile(r"\bIN \((?:\s*\?\s*,?)+\)", re.IGNORECASE), "IN (?)"),
    (re.compile(r"\bIN \(\s*(?:\?\s*,\s*)*\?\s*\)", re.IGNORECASE), "IN (?)"),
    (re.compile(r"^(\s*SELECT\b).*?(\bFROM\b)", re.IGNORECASE), r"\1 \2"),
    (re.compile(r"^(\s*INSERT INTO \S+).*$", re.IGNORECASE), r"\1"),
    (re.compile(r"\b(SET)\b.*?(\bWHERE\b|$)", re.IGNORECASE), r"\1 \2"),
)


def simplify(statement: str) -> str:
    """Return the statement without its values and column lists, as a bounded metric label.

    ``SELECT a, b FROM t WHERE id IN (1, 2)`` becomes ``SELECT FROM t WHERE id IN (?)``;
    ``INSERT INTO t (a) VALUES (1)`` becomes ``INSERT INTO t``; ``UPDATE t SET a=1 WHERE id=2``
    becomes ``UPDATE t SET WHERE id=?``.
    """
    for pattern, replacement in _SUBSTITUTIONS:
        statement = pattern.sub(replacement, statement)
    return statement.strip()[:_MAX_LENGTH]


def _engine_label(engine: Any) -> str:
    if engine is None:
        return ""
    url = engine.url
    return f"{url.drivername}://{url.host or ''}/{url.database or ''}"


class _Children:
    """(statement, engine) -> its series: simplifying a statement takes nine regular expressions.

    Bounded (emptied when full); renewed when the metrics are (tests reset them).
    """

    def __init__(self) -> None:
        self.metrics: Any = None
        self.children: dict[tuple[str | None, Any], Any] = {}


_CHILDREN = _Children()
_MAX_CHILDREN = 4096


def _histogram(statement: str | None, engine: Any) -> Any:
    """The series of ``statement`` on ``engine``; ``None`` for the commits."""
    metrics = _metrics.get()
    cache = _CHILDREN
    if cache.metrics is not metrics:
        cache.metrics, cache.children = metrics, {}
    key = (statement, engine)
    child = cache.children.get(key)
    if child is None:
        what = "commit" if statement is None else metrics.statements(simplify(statement))
        child = metrics.series(metrics.database_seconds, {"what": what, "engine": _engine_label(engine)})
        if len(cache.children) >= _MAX_CHILDREN:
            cache.children = {}
        cache.children[key] = child
    return child


def _before_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    del conn, cursor, statement, parameters, executemany
    if context is not None:
        setattr(context, _START, time.perf_counter())


def _after_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    del cursor, parameters, executemany
    start = getattr(context, _START, None)
    if start is None:
        return
    duration = time.perf_counter() - start
    try:
        _histogram(statement, conn.engine).observe(duration)
    except Exception:  # logged: the statement has run
        swallow("timing an SQL statement")


def _before_commit(session: Any) -> None:
    session.info[_SESSION_START] = time.perf_counter()


def _after_commit(session: Any) -> None:
    start = session.info.pop(_SESSION_START, None)
    if start is None:
        return
    duration = time.perf_counter() - start
    try:
        _histogram(None, session.bind).observe(duration)
    except Exception:  # logged: the commit is done
        swallow("timing an SQL commit")


def _listen(sqlalchemy: ModuleType) -> None:
    global _INSTALLED  # noqa: PLW0603  # one set of class-level listeners per process
    del sqlalchemy
    with _LOCK:
        if _INSTALLED:
            return
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.orm import Session

        event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
        event.listen(Engine, "after_cursor_execute", _after_cursor_execute)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        _INSTALLED = True


def install() -> None:
    """Listen to the SQL statements and commits of every engine and session (once per process).

    SQLAlchemy is not imported for that: the listeners are added when the application imports it.
    """
    _post_import.when_imported("sqlalchemy", _listen)
