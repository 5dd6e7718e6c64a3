"""The secret never reaches the logs, in any spelling of its parameter or of its value.

WebOb decodes parameter names, so ``?%73ecret=`` and ``?secr%65t=`` are the secret, and a
mistyped ``?%53ecret=`` is a refused secret: every access line, application line, error warning
and error body must hide it, as a real gunicorn and WebTest show; so must the lines with a secret
holding the separators of generated passwords (``,`` ``)`` ``;``) or sent as ``X-API-Key``.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import test_servers
from _gunicorn import free_port, stop, wait_answering

from c2cwsgiutils import _redact, auth
from c2cwsgiutils.pyramid_logging import JsonLogHandler

_TESTS = Path(__file__).resolve().parent
_INI = _TESTS / "server_app" / "production.ini"
_SECRET = "Zq9,v2);m;k(w)8,p"
# As a client may write it in a URL: "," and ")" are allowed there, ";" would end the value.
_RAW = "Zq9,v2)%3Bm%3Bk(w)8,p"
_ENCODED = urllib.parse.quote(_SECRET, safe="")
_SPELLINGS = (
    _SECRET,
    _RAW,
    _ENCODED,
    urllib.parse.quote(_SECRET),
    urllib.parse.quote_plus(_SECRET),
    re.sub("%[0-9A-F]{2}", lambda match: match.group().lower(), _ENCODED),
)
_TRIES = (
    # (request target, headers, status): each spelling of the parameter, and the header.
    (f"/c2c/logging/level?%73ecret={_ENCODED}", {}, 200),
    (f"/c2c/logging/level?secr%65t={_ENCODED}", {}, 200),
    (f"/c2c/logging/level?%53ecret={_ENCODED}", {}, 403),
    (f"/c2c/logging/level?secret={_RAW}", {}, 200),
    ("/c2c/logging/level", {"X-API-Key": _SECRET}, 200),
)
_QUERIES = {
    "%73ecret=***": 200,
    "secr%65t=***": 200,
    "%53ecret=***": 403,
    "secret=***": 200,
}


def _assert_hidden(text: str) -> None:
    for spelling in _SPELLINGS:
        assert spelling not in text
    # Nor a piece of it: a redaction that stopped at a separator would leave the end.
    for piece in ("Zq9", "m;k(w)8", "m%3Bk(w)8", "k%28w%298"):
        assert piece not in text


def _environment(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = test_servers._environment(home)
    env.update(
        {
            "C2C_SECRET": _SECRET,
            "C2C_LOG_VIEW_ENABLED": "1",
            "C2CWSGIUTILS_CONFIG": f"c2c://{_INI}",
            **extra,
        }
    )
    return env


class ServerApp:
    """``server_app`` on a real gunicorn (one worker) with the library's ``gunicorn.conf.py``."""

    def __init__(self, port: int, log_path: Path) -> None:
        """A server listening on ``port``, writing to ``log_path``."""
        self.port = port
        self.log_path = log_path
        self.output = ""

    def get(self, target: str, headers: Mapping[str, str] | None = None) -> http.client.HTTPResponse:
        """GET ``target`` exactly as written (``requests`` would decode ``%73`` to ``s``)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", target, headers=dict(headers or {}))
            response = connection.getresponse()
            response.read()
            return response
        finally:
            connection.close()


@contextmanager
def serve_server_app(tmp_path: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[ServerApp]:
    """Serve ``server_app``; once stopped, ``output`` holds everything it printed."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "-c", str(_TESTS / "server_app" / "gunicorn.conf.py")]
    command += ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5"]
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=_environment(tmp_path, extra_env or {}),
            cwd=_TESTS,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerApp(port, log_path)
    try:
        wait_answering(f"http://127.0.0.1:{port}/c2c/health_check?max_level=0", log_path)
        yield server
    finally:
        stop(process)
        server.output = log_path.read_text(encoding="utf-8", errors="replace")


def _json_lines(output: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines, output
    return lines


@pytest.mark.server
def test_gunicorn_lines_hide_the_secret_in_every_spelling(tmp_path):
    """Through gunicorn: access lines, application lines and warnings show no piece of the secret."""
    with serve_server_app(tmp_path) as server:
        for target, headers, status in _TRIES:
            assert server.get(target, headers).status == status, target
        assert server.get(f"/hello?name={_RAW}&x=1").status == 200

    output = server.output
    _assert_hidden(output)
    lines = _json_lines(output)
    for line in lines:
        for value in line.values():
            _assert_hidden(str(value))
    # The lines still say what happened.
    access = [line for line in lines if line["logger_name"] == "gunicorn.access"]
    admin = [line for line in access if line.get("path") == "/c2c/logging/level"]
    assert {line.get("query"): line["status"] for line in admin} == {**_QUERIES, None: 200}
    for line in admin:
        assert f"GET /c2c/logging/level?{line.get('query', '')} " in line["msg"]
    (hello,) = [line for line in access if line.get("path") == "/hello"]
    assert hello["query"] == "name=***&x=1"
    (app_line,) = [line for line in lines if line["logger_name"] == "server_app"]
    assert app_line["msg"] == "hello view called with name=***&x=1"
    (warning,) = [line for line in lines if line["logger_name"] == "c2cwsgiutils.errors"]
    assert warning["msg"] == (
        f"GET http://127.0.0.1:{server.port}/c2c/logging/level?%53ecret=*** returned status code 403: "
        "Missing or invalid secret (parameter, X-API-Key header or cookie)"
    )


def _protected(request: Any) -> dict[str, bool]:
    auth.auth_view(request)
    logging.getLogger("secret_app").info("admin call %s", request.url)
    return {"ok": True}


def _fail(request: Any) -> None:
    raise RuntimeError(f"cannot serve {request.url}")


def _configure(config: Any) -> None:
    config.add_route("protected", "/protected")
    config.add_view(_protected, route_name="protected", renderer="fast_json")
    config.add_route("fail", "/fail")
    config.add_view(_fail, route_name="fail")


@pytest.fixture
def secret_app(app_factory):
    """An application with the secret, the JSON error views and two views that show the URL."""

    def build(development: bool = False):
        settings = {"c2c.secret": _SECRET, "c2c.enable_exception_handling": "1"}
        if development:
            settings["c2c.development"] = "1"
        includes = ("c2cwsgiutils.pretty_json", "c2cwsgiutils.request_tracking", "c2cwsgiutils.auth")
        return app_factory(settings, includes=(*includes, "c2cwsgiutils.errors"), configure=_configure)

    yield build
    _redact.forget_secrets()


@contextmanager
def _json_logs() -> Iterator[io.StringIO]:
    """The JSON log lines written in the block (all levels), as the ini's JSON handler writes them."""
    stream = io.StringIO()
    handler = JsonLogHandler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_webtest_lines_and_bodies_hide_the_secret(secret_app):
    """In process: every JSON log line (all fields) and error body hides the secret, paths stay."""
    app = secret_app()
    with _json_logs() as stream:
        for target, headers, status in _TRIES:
            app.reset()  # no login cookie: each try stands alone
            response = app.get(
                target.replace("/c2c/logging/level", "/protected"), headers=headers, status=status
            )
            _assert_hidden(response.text)
    lines = _json_lines(stream.getvalue())
    for line in lines:
        for value in line.values():
            _assert_hidden(str(value))
    admin_calls = [line["msg"] for line in lines if line["logger_name"] == "secret_app"]
    assert admin_calls == [
        "admin call http://localhost/protected?%73ecret=***",
        "admin call http://localhost/protected?secr%65t=***",
        "admin call http://localhost/protected?secret=***",
        "admin call http://localhost/protected",
    ]
    (warning,) = [line for line in lines if line["logger_name"] == "c2cwsgiutils.errors"]
    assert warning["msg"].startswith("GET http://localhost/protected?%53ecret=*** returned status code 403")
    assert warning["path"] == "/protected"


def test_error_bodies_hide_the_secret(secret_app):
    """In development mode the error body shows the exception and its stack, without the secret."""
    app = secret_app(development=True)
    with _json_logs() as stream:
        response = app.get(f"/fail?%73ecret={_ENCODED}&n=1", status=500)
        problem = app.get(f"/fail?n={_RAW}", headers={"Accept": "application/problem+json"}, status=500)
    assert response.json["message"] == "cannot serve http://localhost/fail?%73ecret=***&n=1"
    assert "RuntimeError: cannot serve http://localhost/fail?%73ecret=***&n=1" in response.json["stacktrace"]
    assert problem.json["detail"] == "cannot serve http://localhost/fail?n=***"
    tracebacks = [line.get("full_message", "") for line in _json_lines(stream.getvalue())]
    assert any("RuntimeError: cannot serve http://localhost/fail?%73ecret=***&n=1" in t for t in tracebacks)
    for text in (response.text, problem.text, stream.getvalue()):
        _assert_hidden(text)
