"""A small HTTP server on 127.0.0.1 in a thread, for the acceptance helper tests."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Handler = Callable[[http.server.BaseHTTPRequestHandler, str, bytes], tuple[int, dict[str, str], bytes]]


@contextmanager
def serve(handler: Handler) -> Iterator[str]:
    """Serve every request with ``handler(request, method, body)`` and yield the base URL."""

    class _Handler(http.server.BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, content = handler(self, self.command, body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 204:
                self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if status != 204:
                self.wfile.write(content)

        def log_message(self, *args: object) -> None:
            pass

    for _method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        setattr(_Handler, f"do_{_method}", _Handler._handle)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
