"""An explicit transaction manager that creates the transaction of a request when it is first used.

``db.init`` makes ``pyramid_tm`` give each request its own explicit transaction manager. The tween
begins a transaction before the view and commits it after, on every request, including the many
that never touch it (a health check, a static answer, a view without database): a ``Transaction``
object, its synchronizer set and logger, then a commit that has nothing to commit.

:class:`LazyTransactionManager` is that explicit manager, with ``begin()`` deferred: it returns a
pending transaction that records ``note()`` and attribute assignments (what ``pyramid_tm`` does
with it), and the real transaction is begun, with those applied, as soon as anything asks for it:
``get()`` (a session joining, a hook being added), ``doom()``, ``savepoint()``, a synchronizer
registration, or any other use of the pending transaction. Committing or aborting a transaction
that was never asked for does nothing, which is what committing an empty transaction amounts to.
Everything else is ``transaction.TransactionManager(explicit=True)``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import transaction
from transaction.interfaces import AlreadyInTransaction
from transaction.weakset import WeakSet

__all__ = ["LazyTransactionManager", "explicit_manager"]

# What ``TransactionManager.__init__`` sets: the manager below sets them itself, except the set of
# synchronizers, made when first used. If a version of transaction sets more, its __init__ runs.
_BASE_ATTRIBUTES = frozenset({"explicit", "_txn", "_synchs"})
_OWN_INIT = set(vars(transaction.TransactionManager(explicit=True))) == _BASE_ATTRIBUTES


class _PendingTransaction:
    """What ``begin()`` returns until the transaction is needed; then a proxy of the real one."""

    __slots__ = ("_c2c_manager", "_c2c_real", "_c2c_recorded")

    def __init__(self, manager: LazyTransactionManager) -> None:
        object.__setattr__(self, "_c2c_manager", manager)
        object.__setattr__(self, "_c2c_real", None)
        object.__setattr__(self, "_c2c_recorded", [])

    def _c2c_pending(self) -> bool:
        return self._c2c_real is None and self._c2c_manager._pending is self  # noqa: SLF001  # its manager

    def _c2c_begin(self) -> Any:
        """The real transaction (begun now if it is still pending)."""
        real = self._c2c_real
        if real is None:
            real = self._c2c_manager.get()
        return real

    def _c2c_started(self, real: Any) -> None:
        """The manager began the real transaction: apply what was recorded, then forward."""
        object.__setattr__(self, "_c2c_real", real)
        for name, value in self._c2c_recorded:
            if name is None:
                real.note(value)
            else:
                setattr(real, name, value)
        self._c2c_recorded.clear()

    def note(self, text: str) -> None:
        """Add ``text`` to the transaction's description (recorded while pending)."""
        if self._c2c_pending():
            self._c2c_recorded.append((None, text))
        else:
            self._c2c_begin().note(text)

    def __setattr__(self, name: str, value: Any) -> None:
        """Set an attribute of the transaction (``user``, ``description``...; recorded while pending)."""
        if self._c2c_pending():
            self._c2c_recorded.append((name, value))
        else:
            setattr(self._c2c_begin(), name, value)

    def __getattr__(self, name: str) -> Any:
        """Anything else needs the transaction: begin it."""
        return getattr(self._c2c_begin(), name)


class LazyTransactionManager(transaction.TransactionManager):  # type: ignore[misc]  # untyped base
    """``transaction.TransactionManager(explicit=True)`` whose ``begin()`` is deferred (see the module)."""

    def __init__(self) -> None:
        """An explicit manager without transaction."""
        if _OWN_INIT:
            self.explicit = True
            self._txn = None
        else:
            super().__init__(explicit=True)
        self._pending: _PendingTransaction | None = None

    @cached_property
    def _synchs(self) -> Any:
        """The synchronizers (a weak set, as the base manager's), made when first used.

        The base manager makes it in ``__init__``: a ``WeakValueDictionary`` per request, most of
        them never used.
        """
        return WeakSet()

    def _start(self) -> Any:
        """Begin the real transaction of the pending one."""
        pending = self._pending
        self._pending = None
        real = super().begin()
        if pending is not None:
            pending._c2c_started(real)  # noqa: SLF001  # its pending transaction
        return real

    def begin(self) -> Any:
        """Begin a transaction (pending until used); ``AlreadyInTransaction`` if one is there."""
        if self._pending is not None or self._txn is not None:
            raise AlreadyInTransaction
        self._pending = _PendingTransaction(self)
        return self._pending

    def get(self) -> Any:
        """The current transaction, begun now if it was pending; ``NoTransaction`` without one."""
        if self._pending is not None:
            return self._start()
        return super().get()

    def isDoomed(self) -> bool:  # noqa: N802  # the interface's name
        """Whether the transaction is doomed (a pending one is not)."""
        if self._pending is not None:
            return False
        return bool(super().isDoomed())

    def commit(self) -> None:
        """Commit; a pending transaction had nothing to commit: it just ends."""
        if self._pending is not None:
            self._pending = None
            return
        super().commit()

    def abort(self) -> None:
        """Abort; a pending transaction had nothing to abort: it just ends."""
        if self._pending is not None:
            self._pending = None
            return
        super().abort()

    def registerSynch(self, synch: Any) -> None:  # noqa: N802  # the interface's name
        """Register a synchronizer; it sees the transaction at once, as with the base manager."""
        if self._pending is not None:
            self._start()
        super().registerSynch(synch)


def explicit_manager(request: Any) -> LazyTransactionManager:
    """``tm.manager_hook`` of ``db.init``: a new :class:`LazyTransactionManager` per request."""
    del request
    return LazyTransactionManager()
