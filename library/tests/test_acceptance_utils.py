"""retry, retry_timeout, wait_url and approx behave as acceptance suites expect."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from _http_server import serve

from c2cwsgiutils.acceptance import retry
from c2cwsgiutils.acceptance.utils import approx, retry_timeout, wait_url


def test_retry_retries_and_logs(caplog):
    """The decorated function is retried with a readable warning, then succeeds."""
    calls = []

    @retry(ValueError, tries=3, delay=0.01, backoff=1.5)
    def flaky(value):
        calls.append(value)
        if len(calls) < 3:
            raise ValueError(f"boom {len(calls)}")
        return value * 2

    with caplog.at_level(logging.WARNING, logger="c2cwsgiutils.acceptance"):
        assert flaky(21) == 42
    assert calls == [21, 21, 21]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["boom 1, retrying in 0.01 seconds...", "boom 2, retrying in 0.015 seconds..."]


def test_retry_gives_up_and_ignores_other_errors():
    """After the last try the exception goes through; other exceptions are not retried."""
    calls = []

    @retry((ValueError, KeyError), tries=2, delay=0)
    def always(kind):
        calls.append(kind)
        raise kind("x")

    with pytest.raises(ValueError, match="x"):
        always(ValueError)
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(TypeError):
        always(TypeError)
    assert len(calls) == 1


def test_retry_timeout_returns_and_times_out():
    """retry_timeout returns the first success, or fails with 'Timeout: <last error>'."""
    attempts = []

    def eventually():
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return "done"

    assert retry_timeout(eventually, timeout=5, interval=0.01) == "done"

    def never():
        raise RuntimeError("still broken")

    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"^Timeout: still broken$"):
        retry_timeout(never, timeout=0.2, interval=0.05)
    assert time.monotonic() - started < 2


def test_retry_timeout_does_not_retry_name_errors():
    """A NameError is a bug in the test and goes through at once."""
    calls = []

    def buggy():
        calls.append(1)
        raise NameError("undefined")

    with pytest.raises(NameError):
        retry_timeout(buggy, timeout=5, interval=0.01)
    assert calls == [1]


def test_wait_url_waits_for_200():
    """wait_url returns once the URL answers 200 and times out on a URL that never does."""
    ready = threading.Event()

    def app(request, method, body):
        return (200 if ready.is_set() else 503), {}, b"ok"

    with serve(app) as url:
        threading.Timer(0.3, ready.set).start()
        started = time.monotonic()
        wait_url(url + "/health", timeout=10)
        assert time.monotonic() - started >= 0.25
        ready.clear()
        with pytest.raises(AssertionError, match=r"Timeout: .* answered 503"):
            wait_url(url + "/health", timeout=0.5)


def test_approx_nested():
    """The approx helper compares nested floats approximately and everything else exactly."""
    expected = approx({"a": [1.0, {"b": 2.5}], "c": (0.1, "x"), "d": 3}, rel=1e-3)
    close, far, other = (
        {"a": [1.0001, {"b": 2.5001}], "c": (0.10001, "x"), "d": 3},
        {"a": [1.1, {"b": 2.5}], "c": (0.1, "x"), "d": 3},
        {"a": [1.0, {"b": 2.5}], "c": (0.1, "y"), "d": 3},
    )
    assert close == expected
    assert far != expected
    assert other != expected
