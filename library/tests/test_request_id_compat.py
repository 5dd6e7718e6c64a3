"""What existing clients rely on, through a real gunicorn: request ids and the log levels of errors.

The application (``_request_id_errors_app``) writes JSON log lines on stdout, which gunicorn's
helper sends to a file. A request's own log lines are written (and flushed) before its response is
sent, so once a response is received its lines are in the file: the tests read them without
waiting, and an absent line is absent for good.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from _gunicorn import gunicorn, wait_answering

pytestmark = pytest.mark.server

_CHECKOUT_ID = "order 1234 from checkout"


class _Served:
    def __init__(self, url: str, log_path: Path) -> None:
        self.url = url
        self.log_path = log_path

    def records(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (gunicorn's own plain lines are skipped)."""
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def records_of(self, request_id: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record.get("request_id") == request_id]

    def raw_get(self, path: str, request_id: bytes) -> tuple[int, dict[str, str], bytes]:
        """GET with an ``X-Request-ID`` of exactly these bytes (requests would check or encode them)."""
        port = int(self.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"GET " + path.encode() + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                b"X-Request-ID: " + request_id + b"\r\n\r\n"
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines)
        return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Served]:
    """The application in a real gunicorn (one worker), production mode, JSON error views on."""
    tmp_path = tmp_path_factory.mktemp("request_id_compat")
    env = {"DEVELOPMENT": "0", "C2C_ENABLE_EXCEPTION_HANDLING": "1"}
    with gunicorn("_request_id_errors_app:app", env, tmp_path, workers=1) as url:
        wait_answering(url + "/echo", tmp_path / "gunicorn.log")
        yield _Served(url, tmp_path / "gunicorn.log")


def test_request_id_with_spaces_is_kept(served):
    """``X-Request-ID: order 1234 from checkout`` is the id of the answer and of the log lines."""
    response = requests.get(served.url + "/echo", headers={"X-Request-ID": _CHECKOUT_ID}, timeout=10)

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == _CHECKOUT_ID
    assert response.json() == {"id": _CHECKOUT_ID}
    [line] = served.records_of(_CHECKOUT_ID)
    assert line["msg"] == "echo view called"
    assert line["logger_name"] == "request_id_errors_app"


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        (b"order\t1234", r"'order\t1234'"),
        (b"order\x851234", r"'order\x851234'"),  # C1 "next line", as WSGI's latin-1 gives it
        (b"caf\xc3\xa9 order", r"'caf\xc3\xa9 order'"),  # UTF-8: only printable ASCII is kept
        (b"y" * 1000, "'" + "y" * 64 + "'... (1000 characters)"),
    ],
    ids=["tab", "c1-control", "utf-8", "1000-characters"],
)
def test_invalid_request_id_is_replaced_and_logged(served, sent, shown):
    """A control character, non-ASCII text or 1000 characters give a new UUID, logged once, escaped."""
    status, headers, body = served.raw_get("/echo", sent)

    assert status == 200
    new_id = headers["X-Request-ID"]
    assert str(uuid.UUID(new_id)) == new_id
    assert json.loads(body) == {"id": new_id}
    lines = served.records_of(new_id)
    assert [line["logger_name"] for line in lines] == [
        "c2cwsgiutils.request_tracking",
        "request_id_errors_app",
    ]
    warning = lines[0]
    assert warning["level"] == 4  # WARNING
    assert warning["msg"].startswith("The request id of the X-Request-ID header is ")
    assert warning["msg"].endswith(f"; replaced by {new_id}: {shown}")
    raw = served.log_path.read_bytes()
    # Never the value as sent, nor as WSGI's latin-1 text written in UTF-8 (raw C1 controls).
    assert sent not in raw
    assert sent.decode("latin-1").encode() not in raw


def test_server_error_returned_by_a_view_is_logged(served):
    """A 503 the view returns without raising is logged at WARNING with method, path and route."""
    request_id = f"busy-{uuid.uuid4()}"
    response = requests.get(served.url + "/unavailable", headers={"X-Request-ID": request_id}, timeout=10)

    assert response.status_code == 503
    [line] = served.records_of(request_id)
    assert line["logger_name"] == "c2cwsgiutils.errors"
    assert line["level"] == 4  # WARNING
    assert line["msg"] == "GET /unavailable returned status code 503 (route: unavailable)"
    assert (line["method"], line["path"], line["matched_route"], line["status"]) == (
        "GET",
        "/unavailable",
        "unavailable",
        503,
    )


def test_unauthorized_is_logged_at_debug(served):
    """A 401 is logged at DEBUG only: no WARNING nor ERROR line for it."""
    request_id = f"denied-{uuid.uuid4()}"
    response = requests.get(served.url + "/unauthorized", headers={"X-Request-ID": request_id}, timeout=10)

    assert response.status_code == 401
    assert response.json()["request_id"] == request_id
    lines = served.records_of(request_id)
    assert [(line["logger_name"], line["level"]) for line in lines] == [("c2cwsgiutils.errors", 7)]  # DEBUG
    assert lines[0]["msg"].startswith("GET http://127.0.0.1:")
    assert "/unauthorized returned status code 401" in lines[0]["msg"]
