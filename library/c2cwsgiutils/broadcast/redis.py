"""A broadcaster for every process of the service, through Redis pub/sub.

Each message is signed (HMAC-SHA256, see :mod:`c2cwsgiutils.broadcast`); messages that are not
authentic, or older than 5 minutes, are dropped and logged (at most one line a minute). The
callbacks run in a small thread pool, so a slow one (a memory analysis) does not hold the
messages of the others. Each process listens to one answer channel of its own: a broadcast costs
one ``PUBLISH`` and no (un)subscription.

When Redis is unreachable, a broadcast runs the callback of this process only (one warning for
the whole outage, see :data:`c2cwsgiutils.redis_utils.outage`); the listener reconnects by itself
and subscribes again.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

import redis

from c2cwsgiutils import redis_utils
from c2cwsgiutils.broadcast import _signing, interface, utils

__all__ = ["RedisBroadcaster"]

_LOG = logging.getLogger("c2cwsgiutils.broadcast")
_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class _Pending:
    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.answers: list[Any] = []


class RedisBroadcaster(interface.BaseBroadcaster):
    """Broadcasts through the Redis channels ``<prefix><channel>``.

    Args:
        prefix: prefix of the channel names (``C2C_BROADCAST_PREFIX``); services sharing a Redis
            must use different prefixes.
        master: the Redis client used to publish and to listen (``PUBLISH`` counts the
            subscribers of the server it runs on).
        slave: the replica client (kept for compatibility; pub/sub uses the master).
        secret: the key of the message signatures; every process of the service needs the same.
        subscribers: initial subscriptions, channel → callback.
        connect: subscribe now (``False``: the listener thread subscribes when it starts).
    """

    def __init__(
        self,
        prefix: str,
        master: Any,
        slave: Any,
        *,
        secret: str | None = None,
        subscribers: Mapping[str, Callable[..., Any]] | None = None,
        connect: bool = True,
    ) -> None:
        """Create the broadcaster and start its listener thread."""
        if not secret:
            raise ValueError("RedisBroadcaster needs a secret to sign its messages")
        self.pid = os.getpid()
        self._prefix = prefix
        self._master = master
        self._slave = slave
        self._signer = _signing.Signer(secret)
        self._lock = threading.Lock()
        self._subscribers: dict[str, Callable[..., Any]] = dict(subscribers or {})
        self._pending: dict[str, _Pending] = {}
        self._answer_channel = f"{prefix}c2c_answers_{secrets.token_hex(8)}"
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="c2c_broadcast_callback"
        )
        self._pubsub = master.pubsub(ignore_subscribe_messages=True)
        self._thread = redis_utils.PubSubWorkerThread(
            self._pubsub, name="c2c_broadcast_listener", on_recover=self._resync
        )
        if connect:
            self._try_resync()
        self._thread.start()

    @property
    def prefix(self) -> str:
        """The prefix of the channel names."""
        return self._prefix

    def _handlers(self) -> dict[str, Callable[[Any], None]]:
        with self._lock:
            channels = [self._prefix + channel for channel in self._subscribers]
        handlers: dict[str, Callable[[Any], None]] = dict.fromkeys(channels, self._on_request)
        handlers[self._prefix + "c2c_dummy"] = _ignore
        handlers[self._answer_channel] = self._on_answer
        return handlers

    def _resync(self) -> None:
        """Subscribe the channels that are not (the subscription may have failed during an outage)."""
        current = set(self._pubsub.channels)
        missing = {name: handler for name, handler in self._handlers().items() if name not in current}
        if missing:
            self._pubsub.subscribe(**missing)

    def _try_resync(self) -> None:
        try:
            self._resync()
        except _REDIS_ERRORS as error:
            redis_utils.outage.failed("subscribe", error)

    def subscribe(self, channel: str, callback: Callable[..., Any]) -> None:
        """See :meth:`BaseBroadcaster.subscribe`."""
        with self._lock:
            self._subscribers[channel] = callback
        self._try_resync()

    def unsubscribe(self, channel: str) -> None:
        """See :meth:`BaseBroadcaster.unsubscribe`."""
        with self._lock:
            self._subscribers.pop(channel, None)
        try:
            self._pubsub.unsubscribe(self._prefix + channel)
        except _REDIS_ERRORS as error:
            redis_utils.outage.failed("unsubscribe", error)

    def get_subscribers(self) -> dict[str, Callable[..., Any]]:
        """See :meth:`BaseBroadcaster.get_subscribers`."""
        with self._lock:
            return dict(self._subscribers)

    def broadcast(
        self, channel: str, params: Mapping[str, Any], expect_answers: bool, timeout: float
    ) -> list[Any] | None:
        """Publish a signed message; with ``expect_answers``, wait up to ``timeout`` s for the answers."""
        payload: dict[str, Any] = {"channel": self._prefix + channel, "params": dict(params)}
        pending = None
        if expect_answers:
            answer_id = secrets.token_hex(8)
            payload["answer_to"], payload["answer_id"] = self._answer_channel, answer_id
            pending = _Pending()
            with self._lock:
                self._pending[answer_id] = pending
        try:
            try:
                expected = int(self._master.publish(self._prefix + channel, self._signer.seal(payload)))
            except _REDIS_ERRORS as error:
                redis_utils.outage.failed("broadcast", error)
                return self._local(channel, params, expect_answers)
            redis_utils.outage.succeeded()
            if pending is None:
                return None
            return self._collect(channel, pending, expected, timeout)
        finally:
            if pending is not None:
                with self._lock:
                    self._pending.pop(payload["answer_id"], None)

    @staticmethod
    def _collect(channel: str, pending: _Pending, expected: int, timeout: float) -> list[Any]:
        with pending.condition:
            pending.condition.wait_for(lambda: len(pending.answers) >= expected, timeout=timeout)
            answers = list(pending.answers)
        if len(answers) < expected:
            _LOG.warning(
                "Broadcast on %s: %d answer(s) missing after %s s", channel, expected - len(answers), timeout
            )
            answers.extend([None] * (expected - len(answers)))
        return answers

    def _local(self, channel: str, params: Mapping[str, Any], expect_answers: bool) -> list[Any] | None:
        with self._lock:
            callback = self._subscribers.get(channel)
        if callback is None:
            return [] if expect_answers else None
        answer = _call(callback, params)
        return [answer] if expect_answers else None

    def _on_request(self, message: Mapping[str, Any]) -> None:
        channel = str(message.get("channel"))
        payload = self._signer.open(channel, message.get("data"))
        if payload is None or payload.get("channel") != channel:
            if payload is not None:
                _LOG.warning(
                    "Dropped a broadcast message replayed from %s on %s", payload.get("channel"), channel
                )
            return
        with self._lock:
            callback = self._subscribers.get(channel[len(self._prefix) :])
        if callback is None:
            return
        params = payload.get("params")
        if not isinstance(params, dict):
            params = {}
        self._pool.submit(self._answer, callback, params, payload.get("answer_to"), payload.get("answer_id"))

    def _answer(
        self, callback: Callable[..., Any], params: Mapping[str, Any], answer_to: Any, answer_id: Any
    ) -> None:
        answer = _call(callback, params)
        if not isinstance(answer_to, str) or not answer_to.startswith(self._prefix):
            return
        try:
            self._master.publish(
                answer_to, self._signer.seal({"channel": answer_to, "id": answer_id, "answer": answer})
            )
        except _REDIS_ERRORS as error:
            redis_utils.outage.failed("broadcast answer", error)
        except Exception:
            _LOG.exception("Could not send the answer of a broadcast on %s", answer_to)

    def _on_answer(self, message: Mapping[str, Any]) -> None:
        payload = self._signer.open(self._answer_channel, message.get("data"))
        if payload is None or payload.get("channel") != self._answer_channel:
            return
        with self._lock:
            pending = self._pending.get(str(payload.get("id")))
        if pending is None:
            _LOG.debug("Late broadcast answer %s ignored", payload.get("id"))
            return
        with pending.condition:
            pending.answers.append(payload.get("answer"))
            pending.condition.notify_all()

    def close(self) -> None:
        """Stop the listener thread and the callback pool, and close the pub/sub connection."""
        self._thread.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _ignore(message: Any) -> None:
    del message


def _call(callback: Callable[..., Any], params: Mapping[str, Any]) -> Any:
    try:
        return utils.add_host_info(callback(**params))
    except Exception as error:
        _LOG.warning(
            "Error in the broadcast receiver %s", getattr(callback, "__name__", callback), exc_info=True
        )
        return utils.add_host_info({"status": 500, "message": str(error)})
