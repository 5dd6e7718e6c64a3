"""Benchmark (not a test): round trip of a broadcast with answers across 4 gunicorn workers.

Starts a ``redis-server`` and a gunicorn (4 workers, ``gthread``) on free loopback ports, serving
a small application (:func:`make_app`) that includes ``c2cwsgiutils.pyramid`` with
``C2C_REDIS_URL`` and ``C2C_SECRET`` (the broadcasts are signed) and subscribes every worker to
the channel ``bench_ping``. Its view ``/ping`` calls
``broadcast.broadcast("bench_ping", expect_answers=True)`` and returns the number of answers, the
distinct worker pids and the time spent in the call. The harness warms up (bounded) until every
call gets 4 answers, then sends N sequential calls (and N calls from 4 concurrent clients),
checks that each got the 4 answers, and prints p50/p99 of the round trip seen in the view and by
the client::

    make bench-broadcast      # or: .venv/bin/python bench/broadcast.py [--calls 500] [--clients 4]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

_HERE = Path(__file__).resolve().parent
_BIN = Path(sys.executable).parent
_WORKERS = 4
_THREADS = 4
_CHANNEL = "bench_ping"
_BROADCAST_TIMEOUT = 2.0
_START_TIMEOUT = 60.0
_WARMUP_TIMEOUT = 60.0
_WARMUP_STREAK = 20


def _pong() -> dict[str, Any]:
    return {"pid": os.getpid()}


def _ping(request: Any) -> dict[str, Any]:
    from c2cwsgiutils import broadcast

    del request
    start = time.perf_counter()
    answers = broadcast.broadcast(_CHANNEL, expect_answers=True, timeout=_BROADCAST_TIMEOUT) or []
    elapsed = time.perf_counter() - start
    pids = sorted({answer["pid"] for answer in answers if isinstance(answer, dict)})
    return {"answers": len([a for a in answers if a is not None]), "pids": pids, "elapsed_ms": elapsed * 1e3}


def make_app() -> Any:
    """Build the WSGI application of a worker (gunicorn ``broadcast:make_app()``, no preload)."""
    from c2cwsgiutils import broadcast, testing

    def configure(config: Any) -> None:
        config.add_route("ping", "/ping", request_method="GET")
        config.add_view(_ping, route_name="ping", renderer="json", http_cache=0)

    app = testing.make_app({}, includes=("c2cwsgiutils.pyramid",), configure=configure)
    broadcast.subscribe(_CHANNEL, _pong)
    return app


def _percentiles(values: Sequence[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


class _Calls:
    """The figures of a series of calls of ``/ping``."""

    def __init__(self) -> None:
        self.view_ms: list[float] = []
        self.client_ms: list[float] = []

    def call(self, session: requests.Session, url: str, *, check: bool = True) -> dict[str, Any]:
        start = time.perf_counter()
        response = session.get(url, timeout=_BROADCAST_TIMEOUT + 10)
        client_ms = (time.perf_counter() - start) * 1e3
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        if check:
            if body["answers"] != _WORKERS or len(body["pids"]) != _WORKERS:
                msg = f"Expected {_WORKERS} answers from {_WORKERS} workers, got {body}"
                raise RuntimeError(msg)
            self.view_ms.append(float(body["elapsed_ms"]))
            self.client_ms.append(client_ms)
        return body

    def lines(self, label: str) -> list[str]:
        lines = []
        for name, values in (("in the view", self.view_ms), ("by the client", self.client_ms)):
            p50, p99 = _percentiles(values)
            lines.append(
                f"{label:<28} {name:<14} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  ({len(values)} calls)"
            )
        return lines


def _start_gunicorn(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    command = [
        str(_BIN / "gunicorn"),
        "--chdir",
        str(_HERE),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(_WORKERS),
        "--worker-class",
        "gthread",
        "--threads",
        str(_THREADS),
        "--log-level",
        "warning",
        "broadcast:make_app()",
    ]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})


def _warm_up(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Call until ``_WARMUP_STREAK`` calls in a row got every answer (bounded)."""
    deadline = time.monotonic() + _START_TIMEOUT + _WARMUP_TIMEOUT
    streak = 0
    calls = _Calls()
    with requests.Session() as session:
        while streak < _WARMUP_STREAK:
            if process.poll() is not None or time.monotonic() > deadline:
                log = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                msg = f"The workers did not all answer within the bounded warm-up:\n{log}"
                raise RuntimeError(msg)
            try:
                body = calls.call(session, url, check=False)
            except (requests.ConnectionError, requests.HTTPError):
                time.sleep(0.2)
                continue
            complete = body["answers"] == _WORKERS and len(body["pids"]) == _WORKERS
            streak = streak + 1 if complete else 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _concurrent(url: str, calls: int, clients: int) -> _Calls:
    result = _Calls()

    def client(count: int) -> None:
        with requests.Session() as session:
            for _ in range(count):
                result.call(session, url)  # list.append is atomic

    shares = [calls // clients + (1 if index < calls % clients else 0) for index in range(clients)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client, share) for share in shares]:
            future.result()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Start Redis and gunicorn, measure, print the percentiles; always stop every process."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per series (default 500)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients, 0: none (default 4)")
    args = parser.parse_args(argv)
    import _servers  # the Redis helper of the library's tests, loaded by path

    print(
        f"{dt.datetime.now(tz=dt.UTC):%Y-%m-%d %H:%M} UTC: {args.calls} calls; gunicorn {_WORKERS} "
        f"workers gthread {_THREADS} threads; broadcast timeout {_BROADCAST_TIMEOUT} s",
        flush=True,
    )
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="c2c-bench-broadcast-") as directory:
        redis_server: Any = None
        process: subprocess.Popen[bytes] | None = None
        log_path = Path(directory) / "gunicorn.log"
        try:
            redis_server = _servers._redis.RedisProcess("redis-server", "")  # noqa: SLF001  # the test helper, reused
            port = _servers.free_port()
            env = {"C2C_REDIS_URL": redis_server.url, "C2C_SECRET": "bench-broadcast-secret"}
            env["PROMETHEUS_MULTIPROC_DIR"] = directory
            process = _start_gunicorn(port, env, log_path)
            url = f"http://127.0.0.1:{port}/ping"
            _warm_up(url, process, log_path)
            sequential = _Calls()
            with requests.Session() as session:
                for _ in range(args.calls):
                    sequential.call(session, url)
            lines += sequential.lines("sequential (1 client)")
            if args.clients > 0:
                lines += _concurrent(url, args.calls, args.clients).lines(
                    f"concurrent ({args.clients} clients)"
                )
        finally:
            if process is not None:
                with contextlib.suppress(Exception):
                    _stop(process)
            if redis_server is not None:
                with contextlib.suppress(Exception):
                    redis_server.destroy()
        log = log_path.read_text(encoding="utf-8", errors="replace")
        if "Traceback" in log:
            print(log[-3000:], file=sys.stderr)
            return 1
    print("\n".join(["", *lines]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
