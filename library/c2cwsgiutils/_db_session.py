"""The session class and the engine choice of :mod:`c2cwsgiutils.db` (private).

The bind of a session is chosen when the session is created and given to it (never by changing a
shared ``sessionmaker``), so concurrent requests in threads cannot swap their engines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy
import sqlalchemy.orm
from sqlalchemy.sql import dml, selectable
from sqlalchemy.sql.elements import TextClause

_LOG = logging.getLogger("c2cwsgiutils.db")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READ_TEXT = re.compile(r"\s*(SELECT|WITH|SHOW|EXPLAIN)\b", re.IGNORECASE)
# A row-locking read (SELECT ... FOR UPDATE / SHARE): a read-only replica refuses it.
_LOCKING = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b", re.IGNORECASE)


def engine_name(engine: sqlalchemy.engine.Engine) -> str:
    """The ``c2c_name`` of an engine (its URL without password when it has none)."""
    name = getattr(engine, "c2c_name", None)
    return str(name) if name else engine.url.render_as_string(hide_password=True)


def set_engine_name(engine: sqlalchemy.engine.Engine, name: str) -> None:
    """Set the ``c2c_name`` attribute that names the engine in health checks and metrics."""
    setattr(engine, "c2c_name", name)  # noqa: B010  # Engine does not declare the attribute


def compile_patterns(patterns: Iterable[str | re.Pattern[str]] | None) -> tuple[re.Pattern[str], ...]:
    """Compile the ``force_master`` / ``force_slave`` regular expressions."""
    return tuple(re.compile(p) if isinstance(p, str) else p for p in patterns or ())


def wants_readwrite(
    method: str,
    path: str,
    force_master: Sequence[re.Pattern[str]],
    force_slave: Sequence[re.Pattern[str]],
    *,
    force_readonly: bool,
) -> bool:
    """Whether a request ``METHOD path`` goes to the primary (True) or to the replica (False)."""
    if force_readonly:
        return False
    key = f"{method} {path}"
    if any(pattern.match(key) for pattern in force_master):
        return True
    return not (method in _READ_METHODS or any(pattern.match(key) for pattern in force_slave))


class C2CSession(sqlalchemy.orm.Session):
    """A session that may route reads to the replica until its first write (read-your-writes)."""

    _c2c_replica: sqlalchemy.engine.Engine | None = None
    _c2c_primary: sqlalchemy.engine.Engine | None = None
    _c2c_flushing = False

    def route_reads(self, replica: sqlalchemy.engine.Engine, primary: sqlalchemy.engine.Engine) -> None:
        """Send reads to ``replica`` until something goes to ``primary``; then everything goes there."""
        self._c2c_replica = replica
        self._c2c_primary = primary

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        """Flush; every statement of a flush (its reads included) goes to the primary."""
        flushing = self._c2c_flushing
        self._c2c_flushing = True
        try:
            super().flush(objects)
        finally:
            self._c2c_flushing = flushing

    @property
    def stays_on_primary(self) -> bool:
        """True once a statement of this session went to the primary (or without routing)."""
        return self._c2c_replica is None

    def get_bind(
        self,
        mapper: Any = None,
        *,
        clause: Any = None,
        bind: Any = None,
        **kw: Any,
    ) -> sqlalchemy.engine.Engine | sqlalchemy.engine.Connection:
        """Choose the engine of one statement (see :meth:`route_reads`)."""
        replica, primary = self._c2c_replica, self._c2c_primary
        if primary is None or bind is not None:
            return super().get_bind(mapper, clause=clause, bind=bind, **kw)
        if replica is not None and not self._c2c_flushing and _is_read(clause, primary.dialect):
            return replica
        if replica is not None:
            _LOG.debug("Read-your-writes: the rest of this session uses the primary")
            self._c2c_replica = None
        return primary


def _is_read(clause: Any, dialect: sqlalchemy.engine.Dialect) -> bool:
    """Whether the replica can run ``clause``: a read that locks no row."""
    if isinstance(clause, dml.UpdateBase):
        return False
    if isinstance(clause, selectable.SelectBase):
        # SQLAlchemy has no public accessor for with_for_update(): its SQL shows it.
        return not _LOCKING.search(str(clause.compile(dialect=dialect)))
    if isinstance(clause, TextClause):
        return bool(_READ_TEXT.match(clause.text)) and not _LOCKING.search(clause.text)
    return False
