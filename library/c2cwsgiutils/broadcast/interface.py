"""The interface of the broadcasters."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["BaseBroadcaster"]


class BaseBroadcaster(abc.ABC):
    """Runs a function in every process of the service (or only in this one)."""

    @abc.abstractmethod
    def subscribe(self, channel: str, callback: Callable[..., Any]) -> None:
        """Call ``callback(**params)`` for each message on ``channel`` (replaces a previous callback)."""

    @abc.abstractmethod
    def unsubscribe(self, channel: str) -> None:
        """Stop listening to ``channel``."""

    @abc.abstractmethod
    def broadcast(
        self, channel: str, params: Mapping[str, Any], expect_answers: bool, timeout: float
    ) -> list[Any] | None:
        """Send ``params`` to the subscribers of ``channel`` in every process.

        Returns:
            The answers (one per process, ``None`` for a process that did not answer in time)
            when ``expect_answers``, else ``None``.
        """

    @abc.abstractmethod
    def get_subscribers(self) -> dict[str, Callable[..., Any]]:
        """Return a copy of the subscriptions: channel → callback."""

    def close(self) -> None:  # noqa: B027  # optional hook: most broadcasters hold no resource
        """Release the resources (threads, connections) of the broadcaster."""
