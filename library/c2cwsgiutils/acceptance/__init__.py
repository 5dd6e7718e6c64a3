"""Helpers for acceptance tests of services built with c2cwsgiutils.

The submodules are ``connection`` (an HTTP client that checks status, CORS and cache headers),
``utils`` (waiting and approximate comparisons), ``composition`` (drives a compose project from a
pytest fixture), ``image`` (image and screenshot comparisons) and ``print`` (MapFish Print client).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["retry"]

_LOG = logging.getLogger(__name__)
_P = ParamSpec("_P")
_T = TypeVar("_T")


def retry(
    exception_to_check: type[BaseException] | tuple[type[BaseException], ...],
    tries: int = 3,
    delay: float = 0.5,
    backoff: float = 2,
) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """Retry the decorated function when it raises one of the given exceptions.

    Args:
        exception_to_check: The exception class (or tuple of classes) that triggers a retry.
        tries: The total number of attempts (the last one lets the exception through).
        delay: The pause before the first retry, in seconds.
        backoff: The factor applied to the pause after each retry.

    Returns:
        The decorator.
    """

    def decorator(function: Callable[_P, _T]) -> Callable[_P, _T]:
        @functools.wraps(function)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            remaining, pause = tries, delay
            while remaining > 1:
                try:
                    return function(*args, **kwargs)
                except exception_to_check as error:
                    _LOG.warning("%s, retrying in %.3g seconds...", error, pause)
                    time.sleep(pause)
                    remaining -= 1
                    pause *= backoff
            return function(*args, **kwargs)

        return wrapper

    return decorator
