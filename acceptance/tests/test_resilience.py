"""Resilience: a replica stopped, the Redis master killed, an application stopped under load.

These tests stop, kill and restart services: they run last (see ``conftest.py``), in this order.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Self

import pytest
import requests
from c2cwsgiutils.acceptance import utils
from conftest import SECRET, Stack

pytestmark = pytest.mark.resilience


def _health(stack: Stack, service: str, level: int) -> requests.Response:
    return requests.get(stack.url(service) + f"c2c/health_check?max_level={level}", timeout=30)


def test_replica_stopped(stack: Stack) -> None:
    stack.composition.stop("db-replica", timeout=5)
    try:
        for service in ("app", "app-waitress"):
            failed = _health(stack, service, 1)
            assert failed.status_code == 500
            assert "db_engine_sqlalchemy_slave" in failed.json()["failures"]
            assert "db_engine_sqlalchemy" in failed.json()["successes"]
            assert _health(stack, service, 0).status_code == 200
    finally:
        stack.composition.start("db-replica")

    def recovered() -> None:
        for service in ("app", "app2", "app-waitress"):
            assert _health(stack, service, 1).status_code == 200
            assert requests.get(stack.url(service) + "api/hello", timeout=30).status_code == 200

    utils.retry_timeout(recovered, timeout=60)


def _sentinel_master(stack: Stack) -> str:
    return stack.exec(
        "redis-sentinel", "redis-cli", "-p", "26379", "sentinel", "get-master-addr-by-name", "mymaster"
    )


def test_redis_master_killed(stack: Stack) -> None:
    assert _sentinel_master(stack).split()[0] == "redis"
    stack.composition.kill("redis")

    def failed_over() -> None:
        assert _sentinel_master(stack).split()[0] == "redis-replica"

    utils.retry_timeout(failed_over, timeout=60)
    name = f"acceptance_app.failover{uuid.uuid4().hex[:8]}"
    headers = {"X-API-Key": SECRET}

    def app_follows() -> None:
        changed = requests.get(
            stack.url("app") + "c2c/logging/level",
            params={"name": name, "level": "DEBUG"},
            headers=headers,
            timeout=30,
        )
        assert changed.status_code == 200, changed.text
        # stored on the new master, broadcast to the waitress instance through it
        overrides = requests.get(stack.url("app") + "c2c/logging/level", headers=headers, timeout=30).json()
        assert overrides["overrides"].get(name) == "DEBUG"
        level = requests.get(
            stack.url("app-waitress") + "c2c/logging/level",
            params={"name": name},
            headers=headers,
            timeout=30,
        ).json()
        assert level["level"] == "DEBUG"
        assert len(requests.get(stack.url("app") + "api/pids", timeout=30).json()["pids"]) == 2

    utils.retry_timeout(app_follows, timeout=90, interval=2)
    health = _health(stack, "app", 2)
    assert health.status_code == 200, health.text


class _Load:
    """Threads that GET a URL on new connections until stopped, counting successes and failures."""

    def __init__(self, url: str, threads: int) -> None:
        self.url = url
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        deadline = time.monotonic() + 60  # bounded, whatever happens
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                response = requests.get(self.url, headers={"Connection": "close"}, timeout=30)
                outcome = (
                    None if response.status_code == 200 else f"{response.status_code} {response.text[:200]}"
                )
            except requests.RequestException as error:
                outcome = repr(error)
            with self._lock:
                if outcome is None:
                    self.ok += 1
                else:
                    self.failures.append(outcome)

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def test_stop_under_load_drains(stack: Stack) -> None:
    base = stack.url("app2")
    slow_results: list[int] = []

    def slow() -> None:
        slow_results.append(requests.get(base + "api/slow?seconds=2", timeout=30).status_code)

    stopper = threading.Thread(target=lambda: stack.composition.stop("app2", timeout=30), daemon=True)
    with _Load(base + "api/ping", threads=3) as load:
        slow_threads = [threading.Thread(target=slow, daemon=True) for _ in range(2)]
        for thread in slow_threads:
            thread.start()
        time.sleep(0.5)  # the slow requests are in flight
        ok_before_stop = load.ok
        stopper.start()

        def draining() -> None:
            assert _health(stack, "app2", 1).status_code != 200

        utils.retry_timeout(draining, timeout=20, interval=0.2)
        assert _health(stack, "app2", 0).status_code == 200  # alive, still serving
        # keep loading while it drains (C2C_HEALTH_CHECK_DRAIN_SECONDS=5: a margin on a busy machine)
        time.sleep(1)
    for thread in slow_threads:
        thread.join(timeout=30)
    stopper.join(timeout=60)
    assert load.failures == []
    assert load.ok > ok_before_stop
    assert slow_results == [200, 200]
    stack.composition.start("app2")
