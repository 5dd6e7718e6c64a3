"""A broadcaster for every process of the service, through Redis pub/sub.

Messages (see :mod:`c2cwsgiutils.broadcast._messages`): without a secret, the reference's
unsigned JSON, so that a fleet mixing this library and the reference interoperates; with a
secret, signed with HMAC-SHA256, and the unsigned messages (or older than 5 minutes) are dropped
and logged (at most one line a minute). A process without a secret drops the signed messages
the same way.

The callbacks of a process run one at a time, in the order the messages were received, in the
thread ``c2c_broadcast_callback`` (as the reference runs them in its listener thread): a status
broadcast that follows a ``fetch`` one answers once the fetch is done, not half-way. So a slow
callback (a memory analysis) delays the broadcasts that follow it in that process, and their
senders get ``None`` for that process if it does not answer within their timeout. The
listener thread ``c2c_broadcast_listener`` only reads the messages and collects the answers,
so a broadcast sent from a callback still gets the answers of the other processes; the answer
of its own process, which comes only after the current callback returns, is ``None`` after the
timeout (the broadcast never waits longer than its timeout).

Each process listens to a pattern of answer channels of its own (one channel per broadcast
that expects answers): a broadcast costs one ``PUBLISH`` and no (un)subscription. When Redis is
unreachable, a broadcast runs the callback of this process only (one warning for the whole
outage, see :data:`c2cwsgiutils.redis_utils.outage`); the listener reconnects by itself and
subscribes again.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

import redis

from c2cwsgiutils import redis_utils
from c2cwsgiutils._safety import swallow
from c2cwsgiutils.broadcast import _messages, interface, utils

__all__ = ["RedisBroadcaster"]

_LOG = logging.getLogger("c2cwsgiutils.broadcast")
_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
_Request = tuple[Callable[..., Any], dict[str, Any], str | None]


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
            Without it the messages are the reference's unsigned JSON.
        subscribers: initial subscriptions, channel → callback.
        connect: subscribe now (``False``: the listener thread subscribes when it starts).

    .. versionchanged:: 6.0
        Without ``secret`` the messages are unsigned (the reference's), instead of an error.
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
        """Create the broadcaster and start its listener and callback threads."""
        self.pid = os.getpid()
        self._prefix = prefix
        self._master = master
        self._slave = slave
        self._codec: _messages.PlainCodec | _messages.SignedCodec = (
            _messages.SignedCodec(secret) if secret else _messages.PlainCodec()
        )
        self._lock = threading.Lock()
        self._subscribers: dict[str, Callable[..., Any]] = dict(subscribers or {})
        self._pending: dict[str, _Pending] = {}
        # The answer channel of a broadcast is this base plus an id: one pattern subscription
        # receives them all, and the id in the channel matches an answer to its broadcast even
        # when the answer is the reference's bare JSON.
        self._answer_base = f"{prefix}c2c_answers_{secrets.token_hex(8)}."
        self._answer_pattern = re.sub(r"([\\*?\[\]^])", r"\\\1", self._answer_base) + "*"
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._worker = threading.Thread(
            target=self._run_callbacks, name="c2c_broadcast_callback", daemon=True
        )
        self._pubsub = master.pubsub(ignore_subscribe_messages=True)
        self._thread = redis_utils.PubSubWorkerThread(
            self._pubsub, name="c2c_broadcast_listener", on_recover=self._resync
        )
        if connect:
            self._try_resync()
        self._worker.start()
        self._thread.start()

    @property
    def prefix(self) -> str:
        """The prefix of the channel names."""
        return self._prefix

    @property
    def signed(self) -> bool:
        """Whether the messages are signed (a secret was given)."""
        return self._codec.signed

    def _resync(self) -> None:
        """Subscribe the channels that are not (the subscription may have failed during an outage)."""
        with self._lock:
            channels = [self._prefix + channel for channel in self._subscribers]
        handlers: dict[str, Callable[[Any], None]] = dict.fromkeys(channels, self._on_request)
        handlers[self._prefix + "c2c_dummy"] = _ignore
        current = set(self._pubsub.channels)
        missing = {name: handler for name, handler in handlers.items() if name not in current}
        if missing:
            self._pubsub.subscribe(**missing)
        if self._answer_pattern not in set(self._pubsub.patterns):
            self._pubsub.psubscribe(**{self._answer_pattern: self._on_answer})

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
        """Publish a message; with ``expect_answers``, wait up to ``timeout`` s for the answers."""
        message: dict[str, Any] = {"params": dict(params)}
        pending = None
        if expect_answers:
            message["answer_channel"] = answer_channel = self._answer_base + secrets.token_hex(8)
            pending = _Pending()
            with self._lock:
                self._pending[answer_channel] = pending
            if threading.current_thread() is self._worker and channel in self._subscribers:
                _LOG.warning(
                    "Broadcast on %s from a broadcast callback: the answer of this process comes "
                    "only after the callback returns, it will be None after %s s",
                    channel,
                    timeout,
                )
        try:
            try:
                name = self._prefix + channel
                expected = int(self._master.publish(name, self._codec.seal(name, message)))
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
                    self._pending.pop(message["answer_channel"], None)

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
        """In the listener thread: queue the callback, so that callbacks run in receive order."""
        channel = _text(message.get("channel"))
        ok, request = self._codec.open(channel, message.get("data"))
        if not ok:
            return
        if not isinstance(request, dict) or not isinstance(request.get("params", {}), dict):
            _LOG.warning("Dropped a broadcast message on %s that is not a request: %.200r", channel, request)
            return
        with self._lock:
            callback = self._subscribers.get(channel[len(self._prefix) :])
        if callback is None:
            return
        answer_channel = request.get("answer_channel")
        self._requests.put(
            (callback, request.get("params", {}), answer_channel if isinstance(answer_channel, str) else None)
        )

    def _run_callbacks(self) -> None:
        while True:
            request = self._requests.get()
            if request is None or self._closed.is_set():
                return
            try:
                self._answer(*request)
            except Exception:
                # Logged, and the next callbacks still run (an answer that JSON cannot encode).
                swallow("answering a broadcast")

    def _answer(
        self, callback: Callable[..., Any], params: Mapping[str, Any], answer_channel: str | None
    ) -> None:
        answer = _call(callback, params)
        # Answers go to channels of this service only: a forged request cannot make this
        # process publish on the channels of another service sharing the Redis.
        if answer_channel is None or not answer_channel.startswith(self._prefix) or self._closed.is_set():
            return
        try:
            self._master.publish(answer_channel, self._codec.seal(answer_channel, answer))
        except _REDIS_ERRORS as error:
            redis_utils.outage.failed("broadcast answer", error)

    def _on_answer(self, message: Mapping[str, Any]) -> None:
        channel = _text(message.get("channel"))
        ok, answer = self._codec.open(channel, message.get("data"))
        if not ok:
            return
        with self._lock:
            pending = self._pending.get(channel)
        if pending is None:
            _LOG.debug("Late broadcast answer on %s ignored", channel)
            return
        with pending.condition:
            pending.answers.append(answer)
            pending.condition.notify_all()

    def close(self) -> None:
        """Stop the listener and callback threads and close the pub/sub connection.

        The queued callbacks do not run; the running one may finish (up to 5 s are waited for
        it), but its answer is not sent: the caller may close the Redis client next.
        """
        self._closed.set()
        self._requests.put(None)
        self._thread.stop()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=5)


def _ignore(message: Any) -> None:
    del message


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _call(callback: Callable[..., Any], params: Mapping[str, Any]) -> Any:
    try:
        return utils.add_host_info(callback(**params))
    except Exception as error:
        _LOG.warning(
            "Error in the broadcast receiver %s", getattr(callback, "__name__", callback), exc_info=True
        )
        return utils.add_host_info({"status": 500, "message": str(error)})
