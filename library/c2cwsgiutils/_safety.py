"""Observability code must never break a request, nor hide its bugs in the test suite."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["never_raise"]

_LOG = logging.getLogger("c2cwsgiutils")

# Flipped to True by the test suite (autouse fixture) so that internal errors fail the tests.
reraise_internal_errors = False


@contextlib.contextmanager
def never_raise(what: str) -> Iterator[None]:
    """Log (with the traceback) and swallow any exception raised in the block."""
    try:
        yield
    except Exception:
        if reraise_internal_errors:
            raise
        _LOG.exception("c2cwsgiutils: %s failed; the request continues", what)
