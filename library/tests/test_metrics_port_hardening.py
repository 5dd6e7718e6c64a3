"""The metrics port listens where ``C2C_PROMETHEUS_BIND`` says (gunicorn's master, the stats-db script).

On Linux every address of 127.0.0.0/8 is local: a server bound to 127.0.0.1 only refuses
127.0.0.2, while one bound to every interface answers there too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from _gunicorn import free_port, stop, wait_answering

_BIN = Path(sys.executable).parent
_TIMEOUT = 30.0

_APP = """
from pyramid.config import Configurator

with Configurator() as config:
    config.include("c2cwsgiutils.prometheus")
    app = config.make_wsgi_app()
"""

_CONF = """
from c2cwsgiutils.gunicorn_config import *  # noqa: F403

bind = "127.0.0.1:{port}"
workers = 1
paste = None
wsgi_app = "bind_app:app"
accesslog = None
logconfig_dict = {{}}
"""


def _env(**extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("C2C_", "C2CWSGIUTILS_", "PROMETHEUS_", "GUNICORN_"))
    }
    env.update(extra)
    return env


def _url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/metrics"


def _refused(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.server
@pytest.mark.parametrize(
    ("bind", "answering", "refusing"),
    [
        ("127.0.0.1", ["127.0.0.1"], ["127.0.0.2", "::1"]),
        ("::1", ["::1"], ["127.0.0.1"]),
        ("[::1]", ["::1"], ["127.0.0.1"]),
        (None, ["127.0.0.1", "127.0.0.2"], ["::1"]),  # the default: every IPv4 interface
        ("::", ["::1", "127.0.0.1", "127.0.0.2"], []),
    ],
)
def test_gunicorn_metrics_port_listens_on_the_bind_address(tmp_path, bind, answering, refusing):
    """The metrics server of gunicorn's master answers on the addresses of ``C2C_PROMETHEUS_BIND`` only."""
    app_port, metrics_port = free_port(), free_port()
    (tmp_path / "bind_app.py").write_text(_APP)
    (tmp_path / "gunicorn.conf.py").write_text(_CONF.format(port=app_port))
    (tmp_path / "multiproc").mkdir()
    env = _env(
        C2C_PROMETHEUS_PORT=str(metrics_port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "multiproc"),
        PYTHONPATH=str(tmp_path),
    )
    if bind is not None:
        env["C2C_PROMETHEUS_BIND"] = bind
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(_BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # The master serves the metrics before it starts the workers: once they answer, it listens.
        wait_answering(f"http://127.0.0.1:{app_port}/", log_path)
        for address in answering:
            response = requests.get(_url(address, metrics_port), timeout=10)
            assert response.status_code == 200, log_path.read_text()
            assert "python_info" in response.text
        for address in refusing:
            assert _refused(address, metrics_port), f"{address} answers"
    finally:
        stop(process)


def _connect(address: str, port: int, process: subprocess.Popen[str]) -> socket.socket:
    deadline = time.monotonic() + _TIMEOUT
    while True:
        try:
            return socket.create_connection((address, port), timeout=10)
        except ConnectionRefusedError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the script did not listen on {address}:\n{process.communicate()[1]}")
            time.sleep(0.05)


@pytest.mark.parametrize(
    ("bind", "address", "other"), [("127.0.0.1", "127.0.0.1", "127.0.0.2"), ("::1", "::1", "127.0.0.1")]
)
def test_stats_db_listens_on_the_bind_address(postgresql, bind, address, other):
    """``c2cwsgiutils-stats-db`` serves its one scrape on ``C2C_PROMETHEUS_BIND`` only."""
    script = shutil.which("c2cwsgiutils-stats-db", path=str(_BIN))
    assert script is not None, "the console script is not installed: pip install -e library"
    port = free_port()
    process = subprocess.Popen(
        [script, "--db", postgresql.url_rw],
        env=_env(C2C_PROMETHEUS_PORT=str(port), C2C_PROMETHEUS_BIND=bind),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with _connect(address, port, process) as connection:
            # The script listens (and waits for this connection's request): the other address refuses.
            assert _refused(other, port), f"{other} answers"
            connection.sendall(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
            response = b""
            while chunk := connection.recv(65536):
                response += chunk
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert response.startswith(b"HTTP/1.0 200"), response[:200]
    assert b"# HELP" in response
    assert process.returncode == 0, stderr
