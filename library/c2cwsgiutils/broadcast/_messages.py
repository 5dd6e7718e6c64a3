"""The messages exchanged on the Redis channels of the broadcast, plain or signed.

Plain (no secret), the reference's wire format, so that a fleet mixing this library and the
reference interoperates:

- request: ``{"params": {...}, "answer_channel": "<channel>"}`` (no ``answer_channel`` when no
  answer is expected);
- answer: the JSON of the answer, published on the ``answer_channel`` of the request.

Signed (``C2C_BROADCAST_SECRET`` or ``C2C_SECRET``): ``<hex HMAC-SHA256>.<JSON>``, where the JSON
is ``{"channel": <channel>, "ts": <epoch>, "id": <random>, "message": <the plain message>}``,
with a key derived from the secret. The channel binds a message to the channel it was sent on
(an answer cannot be replayed as a request), the timestamp makes it expire after 5 minutes,
and the id makes it run once: each process remembers the ids it received until their message
expires, and drops a message whose id it has already seen (a captured "set DEBUG" published
again cannot undo a later change). The ids remembered are bounded: past ``max_ids`` (10,000,
far more than a service broadcasts in 5 minutes), the oldest are forgotten and every message
not newer than them is refused, so a forgotten id can never run again.

A codec drops, and logs at most one line a minute for, the messages it cannot accept: a signed
codec the unsigned, forged, expired or replayed ones; a plain codec the signed ones, since
without the secret it cannot tell them from forged ones.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import logging
import re
import secrets
import threading
import time
from typing import Any

_LOG = logging.getLogger("c2cwsgiutils.broadcast")
_KEY_CONTEXT = b"c2cwsgiutils.broadcast.v1"
_DROP_LOG_INTERVAL = 60.0
_SIGNED = re.compile(r"[0-9a-f]{64}\.")


class _Dropper:
    """Counts the dropped messages; logs them at most once every ``_DROP_LOG_INTERVAL`` s."""

    def __init__(self, what: str, hint: str) -> None:
        self._what = what
        self._hint = hint
        self._lock = threading.Lock()
        self._dropped = 0
        self._last_log = 0.0

    def drop(self, channel: str, reason: str) -> tuple[bool, Any]:
        now = time.monotonic()
        with self._lock:
            self._dropped += 1
            if self._last_log and now - self._last_log < _DROP_LOG_INTERVAL:
                return False, None
            dropped, self._dropped, self._last_log = self._dropped, 0, now
        _LOG.warning(
            "Dropped %d broadcast message(s) %s (last: %s on %s); %s",
            dropped,
            self._what,
            reason,
            channel,
            self._hint,
        )
        return False, None


def _text(data: Any) -> str | None:
    # Clients made without decode_responses give bytes.
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return data if isinstance(data, str) else None


def _dumps(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


class _SeenIds:
    """The ids of the signed messages received, kept until their message expires (bounded)."""

    def __init__(self, max_age: float, max_ids: int) -> None:
        self._max_age = max_age
        self._max_ids = max_ids
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self._by_time: list[tuple[float, str]] = []
        # Every message sent at or before this time is refused: its id may have been forgotten.
        self._horizon = float("-inf")

    def first_time(self, message_id: str, sent_at: float, now: float) -> bool:
        """Remember ``message_id``; False if it was seen already or may have been forgotten."""
        with self._lock:
            while self._by_time and self._by_time[0][0] < now - self._max_age:
                self._forget()
            if sent_at <= self._horizon or message_id in self._ids:
                return False
            while len(self._by_time) >= self._max_ids:
                self._forget()
            self._ids.add(message_id)
            heapq.heappush(self._by_time, (sent_at, message_id))
            return True

    def _forget(self) -> None:
        sent_at, message_id = heapq.heappop(self._by_time)
        self._ids.discard(message_id)
        self._horizon = max(self._horizon, sent_at)


class PlainCodec:
    """The reference's unsigned JSON messages."""

    signed = False

    def __init__(self) -> None:
        self._dropper = _Dropper(
            "that this process cannot read",
            "signed messages need the secret: set the same C2C_BROADCAST_SECRET or C2C_SECRET "
            "on every process of the service",
        )

    def seal(self, channel: str, message: Any) -> str:
        """Encode ``message`` for ``channel`` (the channel is not part of a plain message)."""
        del channel
        return _dumps(message)

    def open(self, channel: str, data: Any) -> tuple[bool, Any]:
        """Return ``(True, message)``, or ``(False, None)`` (logged) for a message to drop."""
        text = _text(data)
        if text is None:
            return self._dropper.drop(channel, "not text")
        if _SIGNED.match(text):
            return self._dropper.drop(channel, "signed")
        try:
            return True, json.loads(text)
        except ValueError:
            return self._dropper.drop(channel, "invalid JSON")


class SignedCodec:
    """Messages signed with HMAC-SHA256, bound to their channel, valid ``max_age`` seconds, once."""

    signed = True

    def __init__(self, secret: str, max_age: float = 300.0, max_ids: int = 10_000) -> None:
        self._key = hmac.new(secret.encode("utf-8"), _KEY_CONTEXT, hashlib.sha256).digest()
        self._max_age = max_age
        self._seen = _SeenIds(max_age, max_ids)
        self._dropper = _Dropper(
            "that are not authentic",
            "is another service using the same C2C_BROADCAST_PREFIX, or a process another secret?",
        )

    def seal(self, channel: str, message: Any) -> str:
        """Sign ``message`` for ``channel``."""
        body = _dumps(
            {"channel": channel, "ts": time.time(), "id": secrets.token_hex(16), "message": message}
        )
        return f"{self._sign(body)}.{body}"

    def open(self, channel: str, data: Any) -> tuple[bool, Any]:
        """Return ``(True, message)``, or ``(False, None)`` (logged) for a message that is not authentic."""
        text = _text(data)
        if text is None or not _SIGNED.match(text):
            return self._dropper.drop(channel, "unsigned")
        signature, body = text.split(".", 1)
        if not hmac.compare_digest(signature, self._sign(body)):
            return self._dropper.drop(channel, "bad signature")
        try:
            envelope = json.loads(body)
            refusal = self._refusal(channel, envelope["channel"], float(envelope["ts"]), envelope["id"])
        except (ValueError, TypeError, KeyError):
            refusal = "invalid JSON or no message id"
        if refusal is not None:
            return self._dropper.drop(channel, refusal)
        return True, envelope.get("message")

    def _refusal(self, channel: str, sent_on: Any, timestamp: float, message_id: Any) -> str | None:
        if sent_on != channel:
            return f"replayed from {sent_on!r}"
        now = time.time()
        if abs(now - timestamp) > self._max_age:
            return "expired"
        if not isinstance(message_id, str) or not self._seen.first_time(message_id, timestamp, now):
            return "replayed"
        return None

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode("utf-8"), hashlib.sha256).hexdigest()
