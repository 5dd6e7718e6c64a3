"""Signed broadcast messages: ``<hex HMAC-SHA256>.<JSON>`` with a key derived from the secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any

_LOG = logging.getLogger("c2cwsgiutils.broadcast")
_KEY_CONTEXT = b"c2cwsgiutils.broadcast.v1"
_DROP_LOG_INTERVAL = 60.0


class Signer:
    """Seals and opens the messages exchanged on the Redis channels."""

    def __init__(self, secret: str, max_age: float = 300.0) -> None:
        self._key = hmac.new(secret.encode("utf-8"), _KEY_CONTEXT, hashlib.sha256).digest()
        self._max_age = max_age
        self._lock = threading.Lock()
        self._dropped = 0
        self._last_log = 0.0

    def seal(self, payload: dict[str, Any]) -> str:
        body = json.dumps({**payload, "ts": time.time()}, separators=(",", ":"), default=str)
        signature = hmac.new(self._key, body.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{signature}.{body}"

    def open(self, channel: str, data: Any) -> dict[str, Any] | None:
        """Return the payload, or ``None`` (logged, rate-limited) when it is not authentic."""
        if not isinstance(data, str) or "." not in data:
            self._drop(channel, "unsigned")
            return None
        signature, body = data.split(".", 1)
        expected = hmac.new(self._key, body.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            self._drop(channel, "bad signature")
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            self._drop(channel, "invalid JSON")
            return None
        if not isinstance(payload, dict) or abs(time.time() - float(payload.get("ts", 0))) > self._max_age:
            self._drop(channel, "expired")
            return None
        return payload

    def _drop(self, channel: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._dropped += 1
            if self._last_log and now - self._last_log < _DROP_LOG_INTERVAL:
                return
            dropped, self._dropped, self._last_log = self._dropped, 0, now
        _LOG.warning(
            "Dropped %d broadcast message(s) that are not authentic (last: %s on %s); "
            "is another service using the same C2C_BROADCAST_PREFIX with another secret?",
            dropped,
            reason,
            channel,
        )
