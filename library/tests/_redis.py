"""Pytest plugin: real Redis servers (Debian ``redis-server``, ``redis-sentinel``) on loopback ports.

Fixtures:
- ``redis_factory``: ``redis_factory()`` starts a standalone server (``.stop()``/``.start()`` on the
  same port for fault tests); every server is stopped at the end of the test.
- ``redis_url``: URL of a fresh standalone server.
- ``redis_sentinel``: a master, a replica and one sentinel (service ``mymaster``), for the session;
  flushed before each test.
- ``clean_redis_state``: resets the process-global Redis clients and broadcaster around the test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

_START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A redis-server (or redis-sentinel) process with its own directory and port."""

    def __init__(self, binary: str, config: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="c2c-redis-"))
        self.config_file = self.directory / "redis.conf"
        self.config_file.write_text(
            f'port {self.port}\nbind 127.0.0.1\ndir {self.directory}\nsave ""\nappendonly no\n'
            f"daemonize no\nlogfile {self.directory / 'redis.log'}\n{config}",
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None
        self.process = subprocess.Popen(
            [self.binary, str(self.config_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _START_TIMEOUT
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            while True:
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        log = self.directory / "redis.log"
                        text = log.read_text(encoding="utf-8") if log.exists() else ""
                        self.stop()
                        raise RuntimeError(f"{self.binary} did not start:\n{text}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class SentinelSetup:
    """A master, a replica and a sentinel monitoring them as ``mymaster``."""

    service = "mymaster"

    def __init__(self) -> None:
        self.master = RedisProcess("redis-server", "")
        self.replica = RedisProcess("redis-server", f"replicaof 127.0.0.1 {self.master.port}\n")
        self.sentinel = RedisProcess(
            "redis-sentinel",
            f"sentinel monitor mymaster 127.0.0.1 {self.master.port} 1\n"
            "sentinel down-after-milliseconds mymaster 60000\n",
        )
        self._wait_replica()

    @property
    def sentinels(self) -> str:
        return f"127.0.0.1:{self.sentinel.port}"

    def _wait_replica(self) -> None:
        client = redis.Redis(port=self.replica.port, decode_responses=True)
        deadline = time.monotonic() + _START_TIMEOUT
        try:
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError("the Redis replica did not connect to its master")
                time.sleep(0.05)
        finally:
            client.close()

    def destroy(self) -> None:
        for process in (self.sentinel, self.replica, self.master):
            process.destroy()


@pytest.fixture
def clean_redis_state() -> Iterator[None]:
    from c2cwsgiutils import broadcast, redis_utils

    broadcast.cleanup()
    redis_utils.cleanup()
    yield
    broadcast.cleanup()
    redis_utils.cleanup()


@pytest.fixture
def redis_factory() -> Iterator[Callable[[], RedisProcess]]:
    started: list[RedisProcess] = []

    def start() -> RedisProcess:
        server = RedisProcess("redis-server", "")
        started.append(server)
        return server

    yield start
    for server in started:
        server.destroy()


@pytest.fixture
def redis_url(redis_factory: Callable[[], RedisProcess]) -> str:
    return redis_factory().url


@pytest.fixture(scope="session")
def _redis_sentinel_session() -> Iterator[SentinelSetup]:
    setup = SentinelSetup()
    try:
        yield setup
    finally:
        setup.destroy()


@pytest.fixture
def redis_sentinel(_redis_sentinel_session: SentinelSetup) -> SentinelSetup:
    client = redis.Redis(port=_redis_sentinel_session.master.port)
    try:
        client.flushall()
    finally:
        client.close()
    return _redis_sentinel_session
