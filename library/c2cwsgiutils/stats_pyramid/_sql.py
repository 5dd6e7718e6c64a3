"""SQL statement timing: ``database_seconds{what, engine}`` around the driver's execution.

The listeners are added once per process (never added nor removed per statement). Statements are
timed by the dialect events ``do_execute``, ``do_executemany`` and ``do_execute_no_params``: the
listener runs the dialect's own method between two clock reads. Engine events
(``before_cursor_execute``...) would do the same, but a single engine listener makes SQLAlchemy
dispatch every engine event of every connection (connect, begin, execute, rollback...), which
cost more than the statement's timing itself (~35 us per request on a one-query view); dialect
events are only looked at around the driver's call. Listeners that other code adds to these
dialect events after ours still run, in order, and may execute the statement themselves. A failed
statement is not timed. Commits are timed by the ``Session`` events ``before_commit`` and
``after_commit``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from c2cwsgiutils import _metrics, _post_import
from c2cwsgiutils._safety import swallow

__all__ = ["install", "simplify"]

_MAX_LENGTH = 200
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


def _observe(statement: str | None, engine: Any, start: float) -> None:
    """Observe the time since ``start`` of a statement (``None``: a commit), which has run."""
    duration = time.perf_counter() - start
    try:
        _histogram(statement, engine).observe(duration)
    except Exception:  # logged: the statement has run
        swallow("timing an SQL commit" if statement is None else "timing an SQL statement")


def _later_listener_executed(listeners: Any, own: Any, args: tuple[Any, ...]) -> bool:
    """Run the listeners added after ``own``, in order; True once one of them executed the statement."""
    after = False
    for listener in listeners:
        if after:
            if listener(*args):
                return True
        elif listener is own:
            after = True
    return False


def _timing(method: str) -> Callable[..., bool]:
    """The listener of the dialect event ``method``: run the dialect's ``method`` and time it.

    Its arguments are the event's: ``cursor, statement[, parameters], context``.
    """

    def listener(cursor: Any, statement: str, *args: Any) -> bool:
        context = args[-1]
        if context is None:  # a statement without context (a default's pre-execution): not timed
            return False
        dialect = context.dialect
        start = time.perf_counter()
        listeners = getattr(dialect.dispatch, method)
        arguments = (cursor, statement, *args)
        if len(listeners) == 1 or not _later_listener_executed(listeners, listener, arguments):
            getattr(dialect, method)(*arguments)
        _observe(statement, context.root_connection.engine, start)
        return True

    listener.__name__ = f"c2cwsgiutils_timed_{method}"
    return listener


def _before_commit(session: Any) -> None:
    session.info[_SESSION_START] = time.perf_counter()


def _after_commit(session: Any) -> None:
    start = session.info.pop(_SESSION_START, None)
    if start is not None:
        _observe(None, session.bind, start)


def _listen(sqlalchemy: ModuleType) -> None:
    global _INSTALLED  # noqa: PLW0603  # one set of class-level listeners per process
    del sqlalchemy
    with _LOCK:
        if _INSTALLED:
            return
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.orm import Session

        # Dialect events, listened for on every engine's dialect (see the module's docstring).
        for method in ("do_execute", "do_executemany", "do_execute_no_params"):
            event.listen(Engine, method, _timing(method))
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        _INSTALLED = True


def install() -> None:
    """Listen to the SQL statements and commits of every engine and session (once per process).

    SQLAlchemy is not imported for that: the listeners are added once the application imports it
    (see :mod:`c2cwsgiutils._post_import`).
    """
    _post_import.when_imported("sqlalchemy", _listen)
