"""A real Prometheus server scrapes a real gunicorn (2 workers, recycled by max_requests)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from _gunicorn import get_retrying

pytestmark = pytest.mark.server

_BIN = Path(sys.executable).parent
_REQUESTS = 60
_TIMEOUT = 60.0

_APP = """
from pyramid.config import Configurator


def hello(request):
    return {"hello": "world"}


def main(global_config=None, **settings):
    with Configurator(settings=settings) as config:
        config.include("c2cwsgiutils.request_tracking")
        config.include("c2cwsgiutils.stats_pyramid")
        config.include("c2cwsgiutils.prometheus")
        config.add_route("hello", "/hello")
        config.add_view(hello, route_name="hello", renderer="json")
        return config.make_wsgi_app()


app = main()
"""

_CONF = """
from c2cwsgiutils.gunicorn_config import *  # noqa: F403

bind = "127.0.0.1:{port}"
workers = 2
threads = 2
paste = None
wsgi_app = "prom_app:app"
accesslog = None
logconfig_dict = {{}}
max_requests = 15
max_requests_jitter = 0
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(what, check, timeout=_TIMEOUT, process=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process exited while waiting for {what}")
        try:
            last = check()
            if last:
                return last
        except requests.RequestException as error:
            last = error
        time.sleep(0.2)
    pytest.fail(f"timeout waiting for {what}: {last!r}")
    return None


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def gunicorn_app(tmp_path):
    """Gunicorn with 2 workers, the library's hooks and metrics on its own port."""
    app_port, metrics_port = _free_port(), _free_port()
    (tmp_path / "prom_app.py").write_text(_APP)
    (tmp_path / "gunicorn.conf.py").write_text(_CONF.format(port=app_port))
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    (multiproc / "counter_12345.db").write_bytes(b"stale file of a previous run")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("C2C_", "C2CWSGIUTILS_", "SENTRY_", "PROMETHEUS_", "GUNICORN_"))
    }
    env.update(
        C2C_PROMETHEUS_PORT=str(metrics_port),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        C2C_PROMETHEUS_WORKER_INTERVAL="0.5",
        PYTHONPATH=str(tmp_path),
    )
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [str(_BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(
            "gunicorn",
            lambda: requests.get(f"http://127.0.0.1:{app_port}/hello", timeout=2).ok,
            process=process,
        )
        yield app_port, metrics_port, multiproc
    finally:
        _stop(process)
        log.close()
        print((tmp_path / "gunicorn.log").read_text()[-3000:])


@pytest.fixture
def prometheus_server(tmp_path, gunicorn_app):
    """Debian's prometheus, scraping the metrics port every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus package is not installed")
    _, metrics_port, _ = gunicorn_app
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        textwrap.dedent(
            f"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: app
                static_configs:
                  - targets: ["127.0.0.1:{metrics_port}"]
            """
        )
    )
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(
            "prometheus",
            lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).ok,
            process=process,
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
        log.close()


def _query(base, query):
    response = requests.get(f"{base}/api/v1/query", params={"query": query}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


def test_prometheus_scrapes_the_request_counter_of_all_workers(gunicorn_app, prometheus_server):
    """Prometheus finds the sum over workers (alive and recycled) of the requests sent."""
    app_port, metrics_port, multiproc = gunicorn_app
    assert "counter_12345.db" not in os.listdir(multiproc)  # emptied at start
    retries: list[str] = []
    for _ in range(_REQUESTS):
        response = get_retrying(requests.get, f"http://127.0.0.1:{app_port}/hello", retries, timeout=5)
        assert response.json() == {"hello": "world"}
    # One request was sent by the fixture to wait for gunicorn.
    expected = _REQUESTS + 1
    query = 'sum(c2cwsgiutils_pyramid_routes_seconds_count{route="hello",status="200"})'

    def counted():
        result = _query(prometheus_server, query)
        return result and expected <= float(result[0]["value"][1]) <= expected + len(retries)

    _wait(f"{query} == {expected}", counted)

    # The workers were recycled several times (max_requests = 15): only the live ones have gauges
    # and files; the counts of the dead ones are in the master's archive.
    def live_workers():
        text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        pids = set(re.findall(r'^process_resident_memory_bytes\{pid="(\d+)"\}', text, re.MULTILINE))
        return pids if len(pids) == 2 else None

    pids = _wait("two live workers", live_workers)
    files = os.listdir(multiproc)
    file_pids = {m.group(1) for m in (re.search(r"_(\d+)\.db$", n) for n in files) if m}
    assert file_pids <= pids
    # Per live worker: counter, histogram and its gauges.
    assert len(files) <= 2 * 4
