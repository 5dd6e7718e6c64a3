"""Waiting and comparison helpers for acceptance tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

__all__ = ["approx", "retry_timeout", "wait_url"]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")


def retry_timeout(what: Callable[[], _T], timeout: float = 60, interval: float = 0.5) -> _T:
    """Call ``what`` until it returns without raising, or fail after ``timeout`` seconds.

    Any exception except ``NameError`` (a bug in the test itself) triggers a retry.

    Args:
        what: The function to call.
        timeout: The total time budget, in seconds.
        interval: The pause between two attempts, in seconds.

    Returns:
        What ``what`` returned.

    Raises:
        AssertionError: ``Timeout: <last error>`` when the time budget is spent.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return what()
        except NameError:
            raise
        except Exception as error:
            if time.monotonic() + interval > deadline:
                raise AssertionError(f"Timeout: {error}") from error
            _LOG.info("Not ready yet (%s), retrying in %s seconds", error, interval)
            time.sleep(interval)


def wait_url(url: str, timeout: float = 60) -> None:
    """Wait until ``url`` answers with a 200 status.

    Args:
        url: The URL to poll.
        timeout: The total time budget, in seconds.

    Raises:
        AssertionError: ``Timeout: <last error>`` when the URL is not ready in time.
    """

    def check() -> None:
        response = requests.get(url, timeout=min(10.0, max(timeout, 0.1)))
        if response.status_code != 200:  # noqa: PLR2004 # the one status meaning "ready"
            raise RuntimeError(f"{url} answered {response.status_code}")

    retry_timeout(check, timeout=timeout, interval=min(0.5, timeout / 10))
    _LOG.info("%s is ready", url)


def approx(struct: Any, **kwargs: Any) -> Any:
    """Replace every float of a nested structure of dicts, lists and tuples with ``pytest.approx``.

    Args:
        struct: The expected structure.
        **kwargs: The arguments of ``pytest.approx`` (``rel``, ``abs``, ...).

    Returns:
        A structure that compares equal to values whose floats are approximately equal.
    """
    import pytest

    if isinstance(struct, float):
        return pytest.approx(struct, **kwargs)
    if isinstance(struct, dict):
        return {key: approx(value, **kwargs) for key, value in struct.items()}
    if isinstance(struct, list):
        return [approx(value, **kwargs) for value in struct]
    if isinstance(struct, tuple):
        return tuple(approx(value, **kwargs) for value in struct)
    return struct
