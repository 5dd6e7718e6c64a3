"""Observability code must never break a request, nor hide its bugs in the test suite.

A failure is logged once per cause (where it was raised, and what was being done), with its
traceback, at ERROR; the same cause again is logged at DEBUG only. An integration that fails on
every request (an old dependency, a bug) would otherwise write one traceback per request.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from c2cwsgiutils import _process_state

__all__ = ["never_raise", "reset", "swallow"]

_LOG = logging.getLogger("c2cwsgiutils")

# The causes already logged at ERROR. Bounded: past the cap, new causes are logged every time
# (a flood of distinct causes is a bug of its own, better seen than hidden).
_MAX_CAUSES = 1000
_logged_causes: set[tuple[str, str, str, int]] = set()

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
    _report(what, sys.exc_info()[1])


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
        _report(self._what, error)
        return True


def _report(what: str, error: BaseException | None) -> None:
    traceback = error.__traceback__ if error is not None else None
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    cause = (
        what,
        type(error).__qualname__,
        traceback.tb_frame.f_code.co_filename if traceback is not None else "",
        traceback.tb_lineno if traceback is not None else 0,
    )
    if cause in _logged_causes:
        _LOG.debug("c2cwsgiutils: %s failed again (%r); the request continues", what, error)
        return
    if len(_logged_causes) < _MAX_CAUSES:
        _logged_causes.add(cause)
    _LOG.error(
        "c2cwsgiutils: %s failed; the request continues (the same failure is logged again at DEBUG only)",
        what,
        exc_info=error,
    )


@_process_state.on_reset
def reset() -> None:
    """Forget the causes already logged (for tests)."""
    _logged_causes.clear()
