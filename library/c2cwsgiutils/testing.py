"""Helpers for the test suites of applications that use c2cwsgiutils (and for ours)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["capture_logs", "make_app", "make_test_app", "reset_process_state"]


def make_app(
    settings: Mapping[str, Any] | None = None,
    *,
    includes: Iterable[str] = ("c2cwsgiutils.pyramid",),
    configure: Callable[[Any], None] | None = None,
    route_prefix: str | None = None,
) -> Any:
    """Build a Pyramid WSGI application with the given settings and includes.

    ``configure(config)`` runs after the includes, to add the application's own routes and views.
    """
    from pyramid.config import Configurator

    with Configurator(settings=dict(settings or {}), route_prefix=route_prefix) as config:
        for include in includes:
            config.include(include)
        if configure is not None:
            configure(config)
        return config.make_wsgi_app()


def make_test_app(settings: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    """Same as :func:`make_app`, wrapped in a ``webtest.TestApp`` (needs WebTest)."""
    import webtest

    return webtest.TestApp(make_app(settings, **kwargs))


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.NOTSET)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture_logs(logger: str | None = None, level: int = logging.DEBUG) -> Iterator[list[logging.LogRecord]]:
    """Collect the records logged on ``logger`` (root by default) in the block."""
    target = logging.getLogger(logger)
    records: list[logging.LogRecord] = []
    handler = _ListHandler(records)
    old_level = target.level
    target.addHandler(handler)
    target.setLevel(level)
    try:
        yield records
    finally:
        target.removeHandler(handler)
        target.setLevel(old_level)


def reset_process_state() -> None:
    """Put the library's process-global state back as a fresh process has it.

    The ``requests`` and Redis wrappers removed, the metrics registry and the settings read
    again, Redis clients closed, Sentry closed, the known secrets and the logged failure causes
    forgotten... Call it around each test (an autouse fixture) so that no test leaks that state
    into the next one.
    """
    from c2cwsgiutils import _process_state

    _process_state.reset()
