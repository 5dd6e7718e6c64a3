"""Docker HEALTHCHECK of the c2cwsgiutils image, with the image's Python (no curl needed).

Requests ``http://127.0.0.1:$HEALTHCHECK_PORT$C2C_BASE_PATH/health_check?max_level=$HEALTHCHECK_MAX_LEVEL``
and exits 0 on a 200 response, 1 otherwise (the reason on stdout, shown by ``docker inspect``).

Environment: ``HEALTHCHECK_PORT`` (8080), ``C2C_BASE_PATH`` (``/c2c``), ``HEALTHCHECK_MAX_LEVEL``
(0: liveness, the service answers, no check runs; 1 also runs the vital checks such as the
database), ``HEALTHCHECK_TIMEOUT`` (2 seconds), ``HEALTHCHECK_URL`` (the whole URL, overrides the rest).

It runs every few seconds in every container: a plain ``http://`` URL is requested with a bare
socket (``urllib.request`` alone costs several times the CPU of the rest of the check), other
URLs (``https://``) with ``urllib.request``.
"""

import os
import socket
import sys
from urllib.parse import urlsplit

_OK = 200
_MAX_HEAD = 1024  # bytes read at most to find the status line


def _url() -> str:
    return os.environ.get("HEALTHCHECK_URL") or (
        "http://127.0.0.1:{port}{base}/health_check?max_level={level}".format(
            port=os.environ.get("HEALTHCHECK_PORT") or "8080",
            base=(os.environ.get("C2C_BASE_PATH") or "/c2c").rstrip("/"),
            level=os.environ.get("HEALTHCHECK_MAX_LEVEL") or "0",
        )
    )


def _plain_http_status(url: str, timeout: float) -> int:
    """Status code of a ``GET`` on a plain ``http://`` URL (HTTP/1.0, one connection)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or "127.0.0.1"
    with socket.create_connection((host, parts.port or 80), timeout=timeout) as connection:
        connection.sendall(f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode("latin-1"))
        head = b""
        while b"\r\n" not in head and len(head) < _MAX_HEAD:
            chunk = connection.recv(_MAX_HEAD)
            if not chunk:
                break
            head += chunk
    version, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/") or not code.isdigit():
        raise OSError(f"not an HTTP response: {head[:80]!r}")
    return int(code)


def _urllib_status(url: str, timeout: float) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  # configured URL
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def main() -> int:
    """Run the check and return the exit status."""
    url = _url()
    try:
        timeout = float(os.environ.get("HEALTHCHECK_TIMEOUT") or 2)
        if url.startswith("http://"):
            status = _plain_http_status(url, timeout)
        else:
            status = _urllib_status(url, timeout)
    except (OSError, ValueError) as error:
        sys.stdout.write(f"{url}: {error}\n")
        return 1
    sys.stdout.write(f"{url}: {status}\n")
    return 0 if status == _OK else 1


if __name__ == "__main__":
    sys.exit(main())
