"""A service configured as the reference README says (tests/readme_app), on real gunicorn.

Its ``gunicorn.conf.py`` uses gunicorn's own logger and calls prometheus_client's
``mark_process_dead`` itself; its ini file has ``args = (...)`` and ``kwargs = {...}`` handlers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from _gunicorn import free_port, get_retrying, stop
from readme_app import gunicorn_command

pytestmark = pytest.mark.server

_APP = Path(__file__).parent / "readme_app"
_SECRET = "s3cr3t-of-the-readme-service"
_RECYCLES = 100


def _start(
    tmp_path: Path, log_type: str, max_requests: int
) -> tuple[subprocess.Popen[bytes], str, int, Path]:
    port, metrics_port = free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(_APP.parent),
        "LOG_TYPE": log_type,
        "LOG_LEVEL": "INFO",
        "OTHER_LOG_LEVEL": "WARNING",
        "GUNICORN_LOG_LEVEL": "WARNING",
        "C2CWSGIUTILS_LOG_LEVEL": "WARNING",
        "C2C_SECRET": _SECRET,
        "C2C_PROMETHEUS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "GUNICORN_MAX_REQUESTS": str(max_requests),
        "GUNICORN_MAX_REQUESTS_JITTER": "0",
    }
    (tmp_path / "metrics").mkdir()
    command = [*gunicorn_command(f"127.0.0.1:{port}"), "--graceful-timeout", "5"]
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{base}/c2c/health_check?max_level=0", timeout=2)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(log_path.read_text(errors="replace"))
            time.sleep(0.1)
    return process, base, metrics_port, log_path


def _stop(process: subprocess.Popen, log_path: Path) -> str:
    stop(process)
    output = log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in output, output
    return output


def _get(url: str, retries: list[str], **kwargs: object) -> requests.Response:
    return get_retrying(requests.get, url, retries, timeout=10, **kwargs)


def _routes_count(metrics: str, route: str) -> float:
    prefix = "c2cwsgiutils_pyramid_routes_seconds_count{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(prefix) and f'route="{route}"' in line
    )


def test_readme_service_recycled_workers_json_access_lines(tmp_path):
    """100 recycled workers: secret in no line, request ids in the JSON access lines, few metric files."""
    process, base, metrics_port, log_path = _start(tmp_path, "json", max_requests=1)
    sent: list[str] = []
    retries: list[str] = []
    try:
        for number in range(2 * _RECYCLES):
            request_id = f"readme request {number}"
            response = _get(
                f"{base}/hello?secret={_SECRET}&n={number}", retries, headers={"X-Request-ID": request_id}
            )
            assert response.status_code == 200, response.text
            assert response.json()["request_id"] == request_id
            sent.append(request_id)
        # The files of the recycled workers are archived: their counts stay, their files go.
        metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert len(sent) <= _routes_count(metrics, "hello") <= len(sent) + len(retries)
        files = os.listdir(tmp_path / "metrics")
        # Two live workers, each with at most a handful of files (counters, histograms, gauges).
        assert len(files) <= 2 * 6, sorted(files)
    finally:
        output = _stop(process, log_path)

    assert _SECRET not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger_name", line.get("logger")) == "gunicorn.access"]
    # Sorted: two workers write to the same output, each line whole, in the order they finish.
    hello_ids = sorted(line["request_id"] for line in access if line.get("path") == "/hello")
    assert set(hello_ids) == set(sent)
    assert len(sent) <= len(hello_ids) <= len(sent) + len(retries)
    for line in access:
        assert "secret=***" in line["msg" if "msg" in line else "message"] or line.get("path") != "/hello"
        assert line["status"] == 200
    workers = {line.get("process", line.get("pid")) for line in access}
    assert len(workers) >= _RECYCLES


def test_readme_service_console_access_lines_hide_the_secret(tmp_path):
    """With LOG_TYPE=console (a kwargs= handler), access lines go through the ini's formatter, masked."""
    process, base, _, log_path = _start(tmp_path, "console", max_requests=1000)
    try:
        for header in ({}, {"X-API-Key": _SECRET}, {"Cookie": f"C2C_SECRET={_SECRET}"}):
            response = _get(f"{base}/c2c?secret={_SECRET}", [], headers=header)
            assert response.status_code == 200
    finally:
        output = _stop(process, log_path)
    access = [line for line in output.splitlines() if "[gunicorn.access]" in line]
    assert len(access) == 3 + 1, output  # and the readiness probe of _start
    assert _SECRET not in output
    assert all("secret=***" in line for line in access if "/c2c?" in line)


def test_a_line_logged_before_a_sigkill_is_in_the_output(tmp_path):
    """The OOM killer's SIGKILL right after a view logged: the view's JSON line is in the output."""
    process, base, _, log_path = _start(tmp_path, "json", max_requests=1000)
    killed = []
    try:
        for number in range(5):
            answer = _get(f"{base}/hello", [], headers={"X-Request-ID": f"killed {number}"}).json()
            os.kill(answer["pid"], signal.SIGKILL)  # no exit handler runs, no flush
            killed.append(answer["request_id"])
    finally:
        output = _stop(process, log_path)
    views = [json.loads(line) for line in output.splitlines() if "hello from the view of" in line]
    assert [line["request_id"] for line in views] == killed
