"""Acceptance tests against real gunicorn and waitress processes serving ``server_app`` on 127.0.0.1.

The application is read through the ``c2c://`` loader (or gunicorn's own ``--paste``) from
``server_app/production.ini``, whose ``%(NAME)s`` values come from the environment, with
``LOG_TYPE=json``: everything the servers print on stdout must be JSON, without the secret.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.server

_TESTS = Path(__file__).resolve().parent
_APP = _TESTS / "server_app"
_INI = _APP / "production.ini"
_BIN = Path(sys.executable).parent
_SECRET = "s3cret"
_GREETING = "hello from the environment"
_START_TIMEOUT = 60.0
_LOG_TIMEOUT = 15.0
# Variables of the library or of the ini file that must not leak from the developer's shell.
_OWN_PREFIXES = ("C2C_", "C2CWSGIUTILS_", "SENTRY_", "DEVELOPMENT", "LOG_", "GUNICORN_", "DEBUG_LOGCONFIG")


class _Server:
    """A server process whose stdout and stderr lines are collected by two reader threads."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port_pattern: str) -> None:
        self.name = name
        self.port_pattern = re.compile(port_pattern)
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=str(_TESTS),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            start_new_session=True,
        )
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self._stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self._stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.url = f"http://127.0.0.1:{self._wait_for_port()}"

    @staticmethod
    def _read(stream: Any, lines: list[str]) -> None:
        lines.extend(line.rstrip("\n") for line in stream)

    @property
    def stdout(self) -> list[str]:
        return list(self._stdout)

    @property
    def stderr(self) -> list[str]:
        return list(self._stderr)

    def diagnostics(self) -> str:
        return f"{self.name} stdout:\n" + "\n".join(self.stdout) + "\nstderr:\n" + "\n".join(self.stderr)

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            for line in self.stdout:
                match = self.port_pattern.search(line)
                if match:
                    return int(match.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"{self.name} did not start listening\n{self.diagnostics()}")

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout]

    def wait_for_log(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + _LOG_TIMEOUT
        while time.monotonic() < deadline:
            for line in self.stdout:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and predicate(record):
                    return record
            time.sleep(0.1)
        pytest.fail(f"expected log line not found\n{self.diagnostics()}")

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                # The server ignored SIGTERM: kill its process group (it leads it: start_new_session).
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=15)
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _environment(home: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_OWN_PREFIXES) and name not in ("PYTHONPATH", "XDG_RUNTIME_DIR")
    }
    env.update(
        {
            # gunicorn puts its control socket under $HOME: keep it in the test's directory.
            "HOME": str(home),
            "PYTHONPATH": str(_TESTS),
            "LOG_TYPE": "json",
            "LOG_LEVEL": "INFO",
            "OTHER_LOG_LEVEL": "INFO",
            "GUNICORN_LOG_LEVEL": "INFO",
            "C2CWSGIUTILS_LOG_LEVEL": "INFO",
            "SERVER_APP_GREETING": _GREETING,
            "C2C_SECRET": _SECRET,
            "C2C_ENABLE_EXCEPTION_HANDLING": "1",
            "DEVELOPMENT": "0",
            # A value with a %: it must survive ini interpolation.
            "SERVER_APP_PERCENT": "100%",
        }
    )
    return env


_GUNICORN_PORT = r"Listening at: http://127\.0\.0\.1:(\d+)"
_SERVERS = {
    # gunicorn's --paste cannot take a c2c:// URI (it makes it an absolute path): the library's
    # gunicorn_config loads C2CWSGIUTILS_CONFIG through plaster instead.
    "gunicorn-c2c": (
        ["gunicorn", "-c", str(_APP / "gunicorn.conf.py"), "--bind", "127.0.0.1:0"],
        {"C2CWSGIUTILS_CONFIG": f"c2c://{_INI}"},
        _GUNICORN_PORT,
    ),
    "gunicorn-paste": (
        ["gunicorn", "-c", str(_APP / "gunicorn.conf.py"), "--paste", str(_INI), "--bind", "127.0.0.1:0"],
        {},
        _GUNICORN_PORT,
    ),
    "waitress-pserve": (["pserve", "-q", f"c2c://{_INI}"], {}, r"Serving on http://127\.0\.0\.1:(\d+)"),
}


@pytest.fixture(scope="module", params=sorted(_SERVERS))
def server(request, tmp_path_factory) -> Iterator[_Server]:
    """A running server, stopped at the end of the module."""
    pytest.importorskip("gunicorn" if request.param.startswith("gunicorn") else "waitress")
    command, extra_env, port_pattern = _SERVERS[request.param]
    env = _environment(tmp_path_factory.mktemp(request.param))
    env.update(extra_env)
    instance = _Server(request.param, [str(_BIN / command[0]), *command[1:]], env, port_pattern)
    try:
        # The first request may wait for a worker to boot.
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                if instance.get("/c2c").status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or instance.process.poll() is not None:
                pytest.fail(f"{request.param} never answered\n{instance.diagnostics()}")
            time.sleep(0.2)
        yield instance
    finally:
        instance.stop()


def test_index_page(server):
    """The index page answers HTML."""
    response = server.get("/c2c")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html" in response.text.lower()


def test_environment_reaches_the_application(server):
    """``%(NAME)s`` in production.ini is interpolated from the environment, ``%`` in values included."""
    response = server.get("/hello")
    assert response.status_code == 200
    assert response.json() == {"hello": _GREETING, "percent": "100%"}


def test_request_id_is_echoed(server):
    """The ``X-Request-ID`` sent is the one on the response."""
    request_id = f"echo-{uuid.uuid4()}"
    response = server.get("/hello", headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id


def test_not_found_is_json(server):
    """An unknown path gives a JSON 404 with the request id."""
    request_id = f"missing-{uuid.uuid4()}"
    response = server.get("/no/such/page", headers={"X-Request-ID": request_id})
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == 404
    assert body["request_id"] == request_id
    assert response.headers["X-Request-ID"] == request_id


def test_exception_is_json_without_traceback(server):
    """A view that raises gives a JSON 500 with the request id and no traceback outside development."""
    response = server.get("/fail")
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "stacktrace" not in body
    assert "Traceback" not in response.text
    assert "this view always fails" not in response.text


def test_logs_are_json_with_request_id_and_without_secret(server):
    """Stdout holds only JSON objects; app and access lines carry the request id; the secret is masked."""
    request_id = f"logs-{uuid.uuid4()}"
    response = server.get(f"/hello?secret={_SECRET}&x=1", headers={"X-Request-ID": request_id})
    assert response.status_code == 200

    app_line = server.wait_for_log(
        lambda record: record.get("logger_name") == "server_app" and record.get("request_id") == request_id
    )
    assert app_line["msg"] == "hello view called with secret=***&x=1"
    assert app_line["method"] == "GET"
    assert app_line["path"] == "/hello"
    assert app_line["matched_route"] == "hello"
    assert app_line["level"] == 6
    if server.name.startswith("gunicorn"):
        access_line = server.wait_for_log(
            lambda record: (
                record.get("logger_name") == "gunicorn.access" and record.get("request_id") == request_id
            )
        )
        assert access_line["status"] == 200
        assert access_line["method"] == "GET"
        assert access_line["path"] == "/hello"
        assert access_line["query"] == "secret=***&x=1"
        assert "/hello?secret=***&x=1" in access_line["msg"]
        assert isinstance(access_line["duration"], float)
        assert any(record.get("logger_name") == "gunicorn.error" for record in server.json_lines())
    else:
        assert any(record.get("logger_name") == "waitress" for record in server.json_lines())

    lines = server.stdout
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    assert _SECRET not in "\n".join(lines)
    assert _SECRET not in "\n".join(server.stderr)
