"""A broadcaster for a single process: the subscriber is called directly."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from c2cwsgiutils.broadcast import interface, utils

__all__ = ["LocalBroadcaster"]


class LocalBroadcaster(interface.BaseBroadcaster):
    """Calls the subscriber of the channel in this process; its exceptions propagate.

    Args:
        subscribers: initial subscriptions, channel → callback.
    """

    def __init__(self, subscribers: Mapping[str, Callable[..., Any]] | None = None) -> None:
        """Create the broadcaster."""
        self._lock = threading.Lock()
        self._subscribers: dict[str, Callable[..., Any]] = dict(subscribers or {})

    def subscribe(self, channel: str, callback: Callable[..., Any]) -> None:
        """See :meth:`BaseBroadcaster.subscribe`."""
        with self._lock:
            self._subscribers[channel] = callback

    def unsubscribe(self, channel: str) -> None:
        """See :meth:`BaseBroadcaster.unsubscribe`."""
        with self._lock:
            self._subscribers.pop(channel, None)

    def broadcast(
        self, channel: str, params: Mapping[str, Any], expect_answers: bool, timeout: float
    ) -> list[Any] | None:
        """Call the subscriber; the answers are ``[result]`` (``[]`` without subscriber)."""
        del timeout
        with self._lock:
            callback = self._subscribers.get(channel)
        answers = [] if callback is None else [utils.add_host_info(callback(**params))]
        return answers if expect_answers else None

    def get_subscribers(self) -> dict[str, Callable[..., Any]]:
        """See :meth:`BaseBroadcaster.get_subscribers`."""
        with self._lock:
            return dict(self._subscribers)
