"""Container tests of the base image: a tiny service built FROM it, checked from the host.

Run by ``make image-test`` (part of ``make test``) after ``make image``; ``IMAGE`` names the image
under test and ``DOCKER`` the docker CLI (with BuildKit). Every container and image created here
has a unique name and is removed at the end. Ports are published on 127.0.0.1 only.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
IMAGE = os.environ.get("IMAGE", "c2cwsgiutils:latest")
SERVICE_DIR = Path(__file__).resolve().parent / "service"
POSTGRES_DIR = Path(__file__).resolve().parent / "postgres"
REDIS_DIR = Path(__file__).resolve().parent / "redis"
APP_UID = "33333"
STARTUP_TIMEOUT = 30.0


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check, timeout=timeout)


SECRET = "image-test-secret"
"""The ``C2C_SECRET`` of the test containers (``versions.json`` needs it, as in c2cwsgiutils 6.1)."""


def get(url: str, timeout: float = 5, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class Service:
    """A running container of the tiny service."""

    name: str
    url: str
    started: float
    ready_after: float
    metrics_url: str


def _wait_ready(url: str, started: float) -> float:
    deadline = started + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            status, _ = get(url + "/c2c/health_check?max_level=0", timeout=1)
        except (OSError, http.client.HTTPException):  # docker-proxy accepts before the service listens
            status = 0
        if status == 200:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer 200 within {STARTUP_TIMEOUT} s")


@pytest.fixture(scope="module")
def service_image() -> Iterator[str]:
    tag = f"c2cimg-test-service:{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    subprocess.run(
        [DOCKER, "build", "--quiet", "--build-arg", f"IMAGE={IMAGE}", "--tag", tag, str(SERVICE_DIR)],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    try:
        yield tag
    finally:
        docker("image", "rm", "--force", tag, check=False)


def _run(image: str, *options: str, command: tuple[str, ...] = ()) -> Iterator[Service]:
    name = f"c2cimg-test-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--publish",
        "127.0.0.1::8080",
        "--publish",
        "127.0.0.1::9090",
        "--env",
        "LOG_TYPE=json",
        "--env",
        "GUNICORN_WORKERS=2",
        "--env",
        "GUNICORN_LOG_LEVEL=INFO",
        "--env",
        "C2CWSGIUTILS_LOG_LEVEL=INFO",
        "--env",
        f"C2C_SECRET={SECRET}",
        *options,
        image,
        *command,
    )
    try:
        port, metrics_port = (
            docker("port", name, f"{internal}/tcp").stdout.split()[0].rsplit(":", 1)[1]
            for internal in (8080, 9090)
        )
        url = f"http://127.0.0.1:{port}"
        try:
            ready_after = _wait_ready(url, started)
        except AssertionError as error:
            logs = docker("logs", "--tail", "30", name, check=False)
            tail = "\n".join(line[:300] for line in (logs.stdout + logs.stderr).splitlines())
            raise AssertionError(f"{error}\n{tail}") from None
        yield Service(name, url, started, ready_after, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        docker("rm", "--force", "--volumes", name, check=False)


@pytest.fixture(scope="module")
def service(service_image: str) -> Iterator[Service]:
    yield from _run(service_image)


@pytest.fixture
def own_service(service_image: str) -> Iterator[Service]:
    yield from _run(service_image)


def test_health_check_answers(service: Service) -> None:
    """The service answers 200 on its health check, with the service's own check.

    The start-up time is printed, not asserted (a shared machine is noisy): ``image/measure.py``
    measures it.
    """
    status, body = get(service.url + "/c2c/health_check?max_level=1")
    assert status == 200
    assert json.loads(body)["successes"]["always"]["level"] == 1
    print(f"first 200 on the health check {service.ready_after:.2f} s after docker run")


def test_versions_json_is_served(service: Service) -> None:
    """``c2cwsgiutils-genversion`` ran at build time: versions.json names the commit and the packages."""
    assert get(service.url + "/c2c/versions.json")[0] == 403
    status, body = get(service.url + "/c2c/versions.json", headers={"X-API-Key": SECRET})
    assert status == 200
    versions = json.loads(body)
    assert versions["main"]["git_hash"] == "0123456789abcdef0123456789abcdef01234567"
    assert "c2cwsgiutils" in versions["packages"]
    assert "gunicorn" in versions["packages"]


def test_logs_are_json_on_stdout(service: Service) -> None:
    """With ``LOG_TYPE=json`` every line on stdout is a JSON object, the access log included."""
    get(service.url + "/c2c/health_check?from=logs-test")
    deadline = time.monotonic() + 5
    while True:
        logs = docker("logs", service.name)
        lines = [line for line in logs.stdout.splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]
        if any("from=logs-test" in json.dumps(record) for record in records) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert records, logs.stderr
    assert all(isinstance(record, dict) for record in records)
    assert any("from=logs-test" in json.dumps(record) for record in records)


def test_runs_as_non_root(service: Service) -> None:
    """The processes run with the image's fixed non-root UID and group 0."""
    assert docker("exec", service.name, "id", "-u").stdout.strip() == APP_UID
    assert docker("exec", service.name, "id", "-g").stdout.strip() == "0"
    status = docker("exec", service.name, "cat", "/proc/1/status").stdout
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1] == APP_UID


def _master_maps(service: Service) -> str:
    return docker("exec", service.name, "cat", "/proc/1/maps").stdout


def test_application_is_preloaded_in_the_master(service: Service) -> None:
    """By default gunicorn's master (PID 1) loaded the application before forking the workers.

    Pyramid's zope.interface extension is mapped in the master: the workers share those pages.
    """
    assert "site-packages/zope" in _master_maps(service)


def test_docker_healthcheck_turns_healthy(service: Service) -> None:
    """The image's HEALTHCHECK (Python, no curl) reports the container ``healthy``."""
    deadline = time.monotonic() + 30
    health = ""
    while time.monotonic() < deadline:
        health = docker("inspect", "--format", "{{.State.Health.Status}}", service.name).stdout.strip()
        if health == "healthy":
            break
        time.sleep(0.5)
    assert health == "healthy"


def test_docker_stop_drains_in_flight_requests(own_service: Service) -> None:
    """``docker stop`` during a slow request lets it finish with 200, then stops within the grace period."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(get, own_service.url + "/slow?seconds=3", 15)
        time.sleep(1)  # the request is now in the worker
        started = time.monotonic()
        docker("stop", "--time", "15", own_service.name, timeout=30)
        stop_duration = time.monotonic() - started
        status, body = slow.result(timeout=15)
    assert status == 200
    assert json.loads(body) == {"slept": 3.0}
    assert stop_duration < 15
    state = json.loads(docker("inspect", "--format", "{{json .State}}", own_service.name).stdout)
    assert state["ExitCode"] == 0
    assert not state["OOMKilled"]


def test_docker_stop_drains_the_health_check(service_image: str) -> None:
    """``docker stop`` with a drain: the health check fails above level 0 first, then a clean stop.

    The preloaded workers keep the drain (re-armed after gunicorn set their signal handlers).
    """
    for service in _run(service_image, "--env", "C2C_HEALTH_CHECK_DRAIN_SECONDS=5"):
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            stopping = pool.submit(docker, "stop", "--time", "20", service.name, timeout=40)
            for _ in range(200):
                status, body = get(service.url + "/c2c/health_check?max_level=1")
                if status != 200:
                    break
                time.sleep(0.05)
            liveness = get(service.url + "/c2c/health_check?max_level=0")[0]
            stopping.result(timeout=40)
        assert status == 500
        assert b"draining" in body
        assert liveness == 200
        state = json.loads(docker("inspect", "--format", "{{json .State}}", service.name).stdout)
        assert state["ExitCode"] == 0


DRAIN_LOAD_CLIENTS = 8
DRAIN_LOAD_MAX_REQUESTS = 6000  # the bound of the load loop, all clients together


Outcome = tuple[bool, str | None]  # (sent before readiness failed, error or None)


def _load(url: str, unready: threading.Event, done: threading.Event, outcomes: list[Outcome]) -> None:
    """GET ``url`` on a new connection each time (urllib sends ``Connection: close``) until ``done``.

    Each outcome tells whether the request was sent before ``unready`` (readiness failed) was set.
    """
    while not done.is_set():
        before = not unready.is_set()
        try:
            status, _ = get(url, timeout=30)
            error = None if status == 200 else f"HTTP {status}"
        except (OSError, http.client.HTTPException) as exception:
            error = repr(exception)
        outcomes.append((before, error))  # list.append is atomic
        if len(outcomes) >= DRAIN_LOAD_MAX_REQUESTS:
            done.set()


@pytest.mark.parametrize(
    "command", [(), ("pserve", "c2c:///app/production.ini")], ids=["gunicorn", "waitress"]
)
def test_docker_stop_under_load_loses_no_request_sent_before_readiness_failed(
    service_image: str, command: tuple[str, ...]
) -> None:
    """By default ``docker stop`` under load fails readiness first, loses no earlier request, exits 0.

    Clients open a new connection per request, as behind a load balancer that takes the container
    out once its readiness (the health check above level 0) fails: every request sent before that
    is answered; the server still answers after it (the drain), then stops gracefully: a request
    in flight at the end of the drain finishes. waitress runs as PID 1, where a signal's default
    action does nothing: it must stop by itself.
    """
    for service in _run(service_image, command=command):
        readiness_failed, done = threading.Event(), threading.Event()
        outcomes: list[Outcome] = []
        clients = [
            threading.Thread(target=_load, args=(service.url + "/whoami", readiness_failed, done, outcomes))
            for _ in range(DRAIN_LOAD_CLIENTS)
        ]
        for client in clients:
            client.start()
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while sum(error is None for _, error in outcomes) < 20:
                assert time.monotonic() < deadline, outcomes[-5:]
                assert not done.is_set(), outcomes[-5:]
                time.sleep(0.05)
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                # Longer than the drain: still running when the server stops accepting.
                slow = pool.submit(get, service.url + "/slow?seconds=7", 30)
                stopping = pool.submit(docker, "stop", "--time", "30", service.name, timeout=60)
                for _ in range(600):
                    try:
                        status, body = get(service.url + "/c2c/health_check?max_level=1")
                    except (OSError, http.client.HTTPException) as exception:
                        status, body = 0, repr(exception).encode()
                    if status != 200:
                        break
                    time.sleep(0.05)
                readiness_failed.set()
                stopping.result(timeout=60)
                slow_status, slow_body = slow.result(timeout=60)
        finally:
            done.set()
            for client in clients:
                client.join(timeout=60)
        before = [error for sent_before, error in outcomes if sent_before]
        after = [error for sent_before, error in outcomes if not sent_before]
        assert [error for error in before if error] == []
        assert len(before) > 20
        assert (status, b"draining" in body) == (500, True), body
        assert None in after  # still answered once readiness failed
        assert (slow_status, json.loads(slow_body)) == (200, {"slept": 7.0})  # a graceful stop
        state = json.loads(docker("inspect", "--format", "{{json .State}}", service.name).stdout)
        assert state["ExitCode"] == 0


def test_waitress_alternative(service_image: str) -> None:
    """The documented waitress command serves the same application through the c2c:// loader."""
    for waitress in _run(service_image, command=("pserve", "c2c:///app/production.ini")):
        status, body = get(waitress.url + "/c2c/versions.json", headers={"X-API-Key": SECRET})
        assert status == 200
        assert "waitress" in json.loads(body)["packages"]


def test_arbitrary_uid_can_write_runtime_dirs(service_image: str) -> None:
    """With an arbitrary UID in group 0 (OpenShift), /app and the Prometheus directory are writable."""
    result = docker(
        "run",
        "--rm",
        "--user",
        "4242:0",
        service_image,
        "sh",
        "-c",
        "touch /app/probe /prometheus-metrics/probe && echo $PROMETHEUS_MULTIPROC_DIR",
    )
    assert result.stdout.strip() == "/prometheus-metrics"


def test_final_stage_has_no_compiler_and_has_labels() -> None:
    """The final image carries no compiler, no CA secret, and the OCI labels of the build."""
    result = docker(
        "run", "--rm", IMAGE, "sh", "-c", "command -v gcc cc || test -e /run/secrets/ca", check=False
    )
    assert result.returncode != 0, result.stdout
    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", IMAGE).stdout)
    assert labels["org.opencontainers.image.version"] != ""
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert "org.opencontainers.image.revision" in labels


def _build(directory: Path, name: str) -> Iterator[str]:
    """Build ``directory``'s image with a unique tag, yield the tag, remove the image."""
    tag = f"c2cimg-test-{name}:{uuid.uuid4().hex[:12]}"
    subprocess.run(
        [DOCKER, "build", "--quiet", "--tag", tag, str(directory)],
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        timeout=600,
    )
    try:
        yield tag
    finally:
        docker("image", "rm", "--force", tag, check=False)


@pytest.fixture(scope="module")
def postgres_image() -> Iterator[str]:
    yield from _build(POSTGRES_DIR, "postgres")


@pytest.fixture(scope="module")
def redis_image() -> Iterator[str]:
    yield from _build(REDIS_DIR, "redis")


def _backing_service(image: str, alias: str) -> Iterator[tuple[str, str]]:
    """Run ``image`` on a new network as ``alias`` until healthy; yield (network, container)."""
    suffix = uuid.uuid4().hex[:12]
    network, name = f"c2cimg-test-{suffix}", f"c2cimg-test-{alias}-{suffix}"
    docker("network", "create", network)
    try:
        docker("run", "--detach", "--name", name, "--network", network, "--network-alias", alias, image)
        deadline = time.monotonic() + 30
        while docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() != "healthy":
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr
            time.sleep(0.5)
        yield network, name
    finally:
        docker("rm", "--force", "--volumes", name, check=False)
        docker("network", "rm", network, check=False)


@pytest.fixture
def postgres_network(postgres_image: str) -> Iterator[tuple[str, str]]:
    """A network with a PostgreSQL container reachable as ``db``; yields the network and container names."""
    yield from _backing_service(postgres_image, "db")


@pytest.fixture
def redis_network(redis_image: str) -> Iterator[tuple[str, str]]:
    """A network with a Redis container reachable as ``redis``; yields the network and container names."""
    yield from _backing_service(redis_image, "redis")


def test_plain_postgresql_url_works(service_image: str, postgres_network: tuple[str, str]) -> None:
    """A plain ``postgresql://`` URL reaches PostgreSQL with the image's driver; liveness ignores the DB."""
    network, database = postgres_network
    options = ("--network", network, "--env", "SQLALCHEMY_URL=postgresql://postgres@db/postgres")
    for service in _run(service_image, *options):
        status, body = get(service.url + "/c2c/health_check?max_level=1", headers={"X-API-Key": SECRET})
        assert status == 200, body
        assert json.loads(body)["successes"]["database"]["result"]["driver"] == "psycopg"
        docker("stop", "--time", "5", database)
        status, body = get(service.url + "/c2c/health_check?max_level=1", timeout=15)
        assert status == 500
        assert "database" in json.loads(body)["failures"]
        assert get(service.url + "/c2c/health_check?max_level=0")[0] == 200


def test_workers_follow_the_container_cpu_quota(service_image: str) -> None:
    """Without GUNICORN_WORKERS, a one-CPU container runs one gunicorn worker (the host has two CPUs).

    With ``GUNICORN_PRELOAD=0`` (the application loaded in the worker, not preloaded in the master).
    """
    options = ("--cpus", "1", "--env", "GUNICORN_WORKERS=", "--env", "GUNICORN_PRELOAD=0")
    for service in _run(service_image, *options):
        script = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"
        commands = docker("exec", service.name, "sh", "-c", script).stdout.splitlines()
        gunicorns = [
            command for command in commands if command.startswith("/venv/bin/python3 /venv/bin/gunicorn")
        ]
        assert len(gunicorns) == 2, commands  # the master and one worker
        status, _ = get(service.url + "/c2c/health_check?max_level=1")
        assert status == 200
        assert "site-packages/zope" not in _master_maps(service)  # Pyramid not loaded in the master


def test_psycopg2_url_works(service_image: str, postgres_network: tuple[str, str]) -> None:
    """A ``postgresql+psycopg2://`` URL reaches PostgreSQL with the psycopg2 compiled in the image."""
    network, _ = postgres_network
    options = ("--network", network, "--env", "SQLALCHEMY_URL=postgresql+psycopg2://postgres@db/postgres")
    for service in _run(service_image, *options):
        status, body = get(service.url + "/c2c/health_check?max_level=1", headers={"X-API-Key": SECRET})
        assert status == 200, body
        database = json.loads(body)["successes"]["database"]["result"]
        assert database["driver"] == "psycopg2"
        assert database["version"].startswith("PostgreSQL 15")


def _by_worker(url: str, name: str, workers: int = 2, attempts: int = 300) -> dict[int, str]:
    """The level of the logger ``name`` in each worker (new connections until every worker answered)."""
    levels: dict[int, str] = {}
    for _ in range(attempts):
        request = urllib.request.Request(f"{url}/whoami?name={name}", headers={"Connection": "close"})
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
        levels[answer["pid"]] = answer["level"]
        if len(levels) == workers:
            return levels
    raise AssertionError(f"only the workers {sorted(levels)} answered in {attempts} requests")


def test_redis_broadcast_and_metrics_port(service_image: str, redis_network: tuple[str, str]) -> None:
    """With Redis: its check passes, a log level reaches both workers, the metrics port serves both."""
    network, _ = redis_network
    secret = uuid.uuid4().hex
    options = (
        *("--network", network, "--env", "C2C_REDIS_URL=redis://redis:6379"),
        *("--env", f"C2C_SECRET={secret}", "--env", "C2C_LOG_VIEW_ENABLED=1"),
        *("--env", "C2C_PROMETHEUS_PORT=9090"),
    )
    for service in _run(service_image, *options):
        status, body = get(service.url + "/c2c/health_check?max_level=2", headers={"X-API-Key": secret})
        assert status == 200, body
        successes = json.loads(body)["successes"]
        assert successes["redis://redis:6379"]["result"]["info"]["redis_version"]

        logger = f"c2cimg.{uuid.uuid4().hex[:8]}"  # a fresh logger: only the broadcast sets it in the other
        assert set(_by_worker(service.url, logger).values()) == {"NOTSET"}
        request = urllib.request.Request(
            f"{service.url}/c2c/logging/level?name={logger}&level=DEBUG", headers={"X-API-Key": secret}
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            assert json.loads(response.read())["level"] == "DEBUG"
        levels = _by_worker(service.url, logger)
        assert set(levels.values()) == {"DEBUG"}, levels

        status, body = get(service.metrics_url)
        assert status == 200
        text = body.decode()
        for pid in levels:
            assert f'process_resident_memory_bytes{{pid="{pid}"}}' in text, (pid, text[:2000])
        assert "c2cwsgiutils_process_smap_pss_bytes{" in text  # the master's collector of the container
