"""Graceful drain on SIGTERM, with real gunicorn and waitress processes."""

from __future__ import annotations

import signal
import time

import pytest
from test_servers import _APP, _BIN, _GUNICORN_PORT, _INI, _environment, _Server

pytestmark = pytest.mark.server

_COMMANDS = {
    "gunicorn": (
        [
            str(_BIN / "gunicorn"),
            "-c",
            str(_APP / "gunicorn.conf.py"),
            "--paste",
            str(_INI),
            "--bind",
            "127.0.0.1:0",
        ],
        _GUNICORN_PORT,
    ),
    "waitress": ([str(_BIN / "pserve"), "-q", f"c2c://{_INI}"], r"Serving on http://127\.0\.0\.1:(\d+)"),
}


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_sigterm_fails_readiness_then_stops(name, tmp_path):
    """After SIGTERM the health check fails above level 0 while the server still answers, then it exits."""
    command, port_pattern = _COMMANDS[name]
    env = _environment(tmp_path)
    env["C2C_HEALTH_CHECK_DRAIN_SECONDS"] = "2"
    server = _Server(name, command, env, port_pattern)
    try:
        deadline = time.monotonic() + 60
        while server.get("/c2c/health_check").status_code != 200:
            assert time.monotonic() < deadline, server.diagnostics()
            time.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        readiness = server.get("/c2c/health_check")
        liveness = server.get("/c2c/health_check", params={"max_level": "0"})
        assert readiness.status_code == 500, server.diagnostics()
        assert "draining" in readiness.text
        assert liveness.status_code == 200
        server.process.wait(timeout=20)
    finally:
        server.stop()
    assert server.process.returncode in (0, -signal.SIGTERM), server.diagnostics()
