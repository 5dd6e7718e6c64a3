"""Benchmark (not a test): scrape time and file count of the multiprocess metrics directory.

Runs gunicorn with 4 workers, sends 10 000 requests, with and without worker recycling
(``max_requests``), once with the library's archive of dead workers and once with the reference
approach (``prometheus_client.multiprocess.mark_process_dead``: one file per dead worker), then
prints the median scrape time and the number of files::

    make bench-metrics        # or: .venv/bin/python bench/prometheus_scrape.py
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "library" / "tests"))
from test_prometheus_server import _APP  # after the path change on purpose

_BIN = Path(sys.executable).parent
_CONF = """
from c2cwsgiutils.gunicorn_config import *  # noqa: F403

bind = "127.0.0.1:{port}"
workers = 4
threads = 2
paste = None
wsgi_app = "prom_app:app"
accesslog = None
logconfig_dict = {{}}
max_requests = {max_requests}
max_requests_jitter = 0
{child_exit}
"""
_REFERENCE_CHILD_EXIT = """
def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
"""
_TOTAL = 10_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes], *, isolated: bool) -> None:
    """SIGTERM to gunicorn (in a namespace: the child of unshare, which ignores it), then wait."""
    if isolated:
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                for child in (task / "children").read_text().split():
                    os.kill(int(child), signal.SIGTERM)
    else:
        process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def run(
    mode: str, max_requests: int, total: int = _TOTAL, *, isolated: bool = False
) -> tuple[float, int, int]:
    """Serve with 4 workers, send ``total`` requests, return (median scrape ms, files, counted).

    With ``isolated``, gunicorn runs in its own PID namespace with its own ``/proc`` (``unshare
    --pid --fork --mount-proc``, root only), as in a container: the library's memory collector
    reads the smaps of every process it sees in ``/proc``, the host's processes otherwise.
    """
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        app_port, metrics_port = _free_port(), _free_port()
        (root / "prom_app.py").write_text(_APP)
        child_exit = _REFERENCE_CHILD_EXIT if mode == "reference" else ""
        (root / "gunicorn.conf.py").write_text(
            _CONF.format(port=app_port, max_requests=max_requests, child_exit=child_exit)
        )
        multiproc = root / "multiproc"
        multiproc.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "PROMETHEUS_"))},
            "C2C_PROMETHEUS_PORT": str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "PYTHONPATH": os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH")))),
        }
        command = [str(_BIN / "gunicorn"), "-c", "gunicorn.conf.py"]
        if isolated:
            # gunicorn is PID 1 of the namespace: when unshare ends, it gets SIGTERM.
            command = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM", *command]
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    requests.get(f"http://127.0.0.1:{app_port}/hello", timeout=2)
                    break
                except requests.RequestException:
                    time.sleep(0.2)

            def send(count: int) -> None:
                with requests.Session() as session:
                    for _ in range(count):
                        session.get(f"http://127.0.0.1:{app_port}/hello", timeout=10)

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(send, [total // 4] * 4))
            time.sleep(2)  # the last recycled workers have started
            durations = []
            for _ in range(20):
                start = time.perf_counter()
                text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
                durations.append(time.perf_counter() - start)
            counted = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith('c2cwsgiutils_pyramid_routes_seconds_count{group="2"')
            )
            return statistics.median(durations) * 1000, len(os.listdir(multiproc)), int(counted)
        finally:
            _stop(process, isolated=isolated)


def main() -> None:
    """Print one line per scenario."""
    print("mode       max_requests  scrape_ms  files  counted")  # the benchmark's output
    for max_requests in (0, 100):
        for mode in ("archive", "reference"):
            scrape, files, counted = run(mode, max_requests)
            print(f"{mode:10} {max_requests:12}  {scrape:9.1f}  {files:5}  {counted}")


if __name__ == "__main__":
    main()
