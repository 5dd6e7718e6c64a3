from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import webtest

from c2cwsgiutils import _safety, testing

pytest_plugins = ["_postgres", "_redis"]

_C2C_ENV_PREFIXES = ("C2C_", "C2CWSGIUTILS_", "SENTRY_", "DEVELOPMENT", "LOG_TYPE", "DEBUG_LOGCONFIG")


@pytest.fixture(autouse=True)
def _internal_errors_fail_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors swallowed by never_raise in production make the tests fail."""
    monkeypatch.setattr(_safety, "reraise_internal_errors", True)


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Each test starts, and leaves the process, with the library's global state of a fresh process."""
    testing.reset_process_state()
    yield
    testing.reset_process_state()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without any of the library's environment variables."""
    import os

    for name in list(os.environ):
        if name.startswith(_C2C_ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests that configure logging leave the process as they found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    known = {
        name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
        for name, lg in logging.Logger.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lg in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger):
            continue
        if name in known:
            lg.level, lg.handlers[:], lg.propagate, lg.disabled = (
                known[name][0],
                known[name][1],
                known[name][2],
                known[name][3],
            )
        else:
            lg.setLevel(logging.NOTSET)
            lg.handlers[:] = []
            lg.propagate = True
            lg.disabled = False


@pytest.fixture
def app_factory() -> Callable[..., webtest.TestApp]:
    """Build a WebTest application: ``app_factory(settings, configure=..., includes=...)``."""

    def build(settings: dict[str, Any] | None = None, **kwargs: Any) -> webtest.TestApp:
        return testing.make_test_app(settings, **kwargs)

    return build
