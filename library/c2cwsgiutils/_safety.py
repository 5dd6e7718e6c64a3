"""Observability code must never break a request, nor hide its bugs in the test suite."""

from __future__ import annotations

import logging
from types import TracebackType

__all__ = ["never_raise", "swallow"]

_LOG = logging.getLogger("c2cwsgiutils")

# Flipped to True by the test suite (autouse fixture) so that internal errors fail the tests.
reraise_internal_errors = False


def swallow(what: str) -> None:
    """Log the exception being handled (with its traceback), or re-raise it under the test suite.

    For the request path, where ``try``/``except Exception: swallow(...)`` costs nothing until
    something fails, while a context manager is three calls on every request::

        try:
            ...
        except Exception:
            swallow("timing a request")
    """
    if reraise_internal_errors:
        raise  # noqa: PLE0704  # re-raises the exception the caller is handling
    _LOG.error("c2cwsgiutils: %s failed; the request continues", what, exc_info=True)


class never_raise:  # noqa: N801  # used as a function: `with never_raise("what"):`
    """Log (with the traceback) and swallow any exception raised in the block.

    A class rather than ``contextlib.contextmanager``: it runs several times on every request,
    and a generator-based context manager costs several times more.
    """

    __slots__ = ("_what",)

    def __init__(self, what: str) -> None:
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        if kind is None or not issubclass(kind, Exception) or reraise_internal_errors:
            return False
        _LOG.error("c2cwsgiutils: %s failed; the request continues", self._what, exc_info=error)
        return True
