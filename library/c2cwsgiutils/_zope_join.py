"""Sessions of :mod:`c2cwsgiutils.db` joined to a transaction manager without per-session listeners.

``zope.sqlalchemy.register(session, transaction_manager=request.tm)`` adds seven SQLAlchemy event
listeners to each new session: on a view that runs one query, that costs more than the query. The
sessions of :class:`c2cwsgiutils.db.SessionFactory` are instances of one class: listeners
installed once on that class forward each event to the ``ZopeTransactionEvents`` that
:func:`join` stores in the session's ``info``, the object ``register`` would have made, so the
session takes part in the transaction exactly as a registered one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy.event
import sqlalchemy.orm

__all__ = ["join"]

_KEY = "c2cwsgiutils.zope_transaction_events"
# The events and the methods of ZopeTransactionEvents that zope.sqlalchemy.register listens with.
_EVENTS = (
    "after_begin",
    "after_attach",
    "after_flush",
    "after_bulk_update",
    "after_bulk_delete",
    "before_commit",
    "do_orm_execute",
)
_LOCK = threading.Lock()
_INSTALLED: set[type] = set()


def _forward(name: str) -> Callable[..., Any]:
    def listener(first: Any, *args: Any) -> Any:
        # A session, or a context (bulk update/delete, ORM execute state) that has one.
        session = first if isinstance(first, sqlalchemy.orm.Session) else first.session
        events = session.info.get(_KEY)
        if events is None:
            return None
        return getattr(events, name)(first, *args)

    listener.__name__ = f"c2cwsgiutils_zope_{name}"
    return listener


def _install(session_class: type) -> None:
    with _LOCK:
        if session_class in _INSTALLED:
            return
        for name in _EVENTS:
            sqlalchemy.event.listen(session_class, name, _forward(name))
        _INSTALLED.add(session_class)


def join(session: sqlalchemy.orm.Session, session_class: type, transaction_manager: Any) -> None:
    """Make ``session`` (of class ``session_class``) take part in the transactions of ``transaction_manager``.

    Equivalent to ``zope.sqlalchemy.register(session, transaction_manager=transaction_manager)``.
    """
    from zope.sqlalchemy.datamanager import STATUS_ACTIVE, ZopeTransactionEvents

    _install(session_class)
    session.info[_KEY] = ZopeTransactionEvents(
        initial_state=STATUS_ACTIVE, transaction_manager=transaction_manager, keep_session=False
    )
