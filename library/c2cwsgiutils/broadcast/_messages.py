"""The messages exchanged on the Redis channels of the broadcast, plain or signed.

Plain (no secret), the reference's wire format, so that a fleet mixing this library and the
reference interoperates:

- request: ``{"params": {...}, "answer_channel": "<channel>"}`` (no ``answer_channel`` when no
  answer is expected);
- answer: the JSON of the answer, published on the ``answer_channel`` of the request.

Signed (``C2C_BROADCAST_SECRET`` or ``C2C_SECRET``): ``<hex HMAC-SHA256>.<JSON>``, where the JSON
is ``{"channel": <channel>, "ts": <epoch>, "message": <the plain message>}``, with a key derived
from the secret. The channel binds a message to the channel it was sent on (an answer cannot be
replayed as a request) and the timestamp limits the replay of a captured message to 5 minutes.

A codec drops, and logs at most one line a minute for, the messages it cannot accept: a signed
codec the unsigned, forged, expired or replayed ones; a plain codec the signed ones, since
without the secret it cannot tell them from forged ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
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
    """Messages signed with HMAC-SHA256, bound to their channel, valid ``max_age`` seconds."""

    signed = True

    def __init__(self, secret: str, max_age: float = 300.0) -> None:
        self._key = hmac.new(secret.encode("utf-8"), _KEY_CONTEXT, hashlib.sha256).digest()
        self._max_age = max_age
        self._dropper = _Dropper(
            "that are not authentic",
            "is another service using the same C2C_BROADCAST_PREFIX, or a process another secret?",
        )

    def seal(self, channel: str, message: Any) -> str:
        """Sign ``message`` for ``channel``."""
        body = _dumps({"channel": channel, "ts": time.time(), "message": message})
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
            sent_on, timestamp = envelope["channel"], float(envelope["ts"])
        except (ValueError, TypeError, KeyError):
            return self._dropper.drop(channel, "invalid JSON")
        if sent_on != channel:
            return self._dropper.drop(channel, f"replayed from {sent_on!r}")
        if abs(time.time() - timestamp) > self._max_age:
            return self._dropper.drop(channel, "expired")
        return True, envelope.get("message")

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode("utf-8"), hashlib.sha256).hexdigest()
