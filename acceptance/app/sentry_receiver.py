"""A loopback Sentry receiver for the acceptance tests: stores the envelopes sentry-sdk sends.

``POST /api/<project>/envelope/`` (and ``/store/``): the body (gzip or not) is kept;
``GET /events``: the stored envelopes as a JSON list of ``{"path", "items": [...]}``, each item the
parsed JSON lines of the envelope; ``GET /health``: 200. Run: ``python3 /app/sentry_receiver.py``.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_LOCK = threading.Lock()
_ENVELOPES: list[dict[str, Any]] = []
_MAX_ENVELOPES = 1000


def _decode(body: bytes, encoding: str) -> str:
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    return body.decode("utf-8", "replace")


def _items(text: str) -> list[Any]:
    items = []
    for line in text.splitlines():
        try:
            items.append(json.loads(line))
        except ValueError:
            items.append(line)
    return items


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            text = _decode(body, self.headers.get("Content-Encoding", ""))
        except (OSError, zlib.error):
            self._answer(400, {"error": "cannot decode the body"})
            return
        with _LOCK:
            _ENVELOPES.append({"path": self.path, "items": _items(text)})
            del _ENVELOPES[:-_MAX_ENVELOPES]
        self._answer(200, {"id": "0" * 32})

    def do_GET(self) -> None:
        if self.path == "/events":
            with _LOCK:
                self._answer(200, list(_ENVELOPES))
        elif self.path == "/health":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": "not found"})

    def _answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base class's name
        print(f"sentry_receiver: {format % args}", flush=True)  # noqa: T201  # the container's log


if __name__ == "__main__":
    ThreadingHTTPServer(("", 8000), _Handler).serve_forever()
