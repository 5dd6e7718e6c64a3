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
APP_UID = "33333"
STARTUP_TIMEOUT = 30.0


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check, timeout=timeout)


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
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
    tag = f"c2cwsgiutils-test-service:{uuid.uuid4().hex[:12]}"
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
    name = f"c2cwsgiutils-test-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--publish",
        "127.0.0.1::8080",
        "--env",
        "LOG_TYPE=json",
        "--env",
        "GUNICORN_WORKERS=2",
        "--env",
        "GUNICORN_LOG_LEVEL=INFO",
        "--env",
        "C2CWSGIUTILS_LOG_LEVEL=INFO",
        *options,
        image,
        *command,
    )
    try:
        port = docker("port", name, "8080/tcp").stdout.split()[0].rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        try:
            ready_after = _wait_ready(url, started)
        except AssertionError as error:
            logs = docker("logs", "--tail", "30", name, check=False)
            tail = "\n".join(line[:300] for line in (logs.stdout + logs.stderr).splitlines())
            raise AssertionError(f"{error}\n{tail}") from None
        yield Service(name, url, started, ready_after)
    finally:
        docker("rm", "--force", "--volumes", name, check=False)


@pytest.fixture(scope="module")
def service(service_image: str) -> Iterator[Service]:
    yield from _run(service_image)


@pytest.fixture
def own_service(service_image: str) -> Iterator[Service]:
    yield from _run(service_image)


def test_health_check_answers_quickly(service: Service) -> None:
    """The service answers 200 on its health check within a few seconds of ``docker run``."""
    status, body = get(service.url + "/c2c/health_check?max_level=1")
    assert status == 200
    assert json.loads(body)["successes"]["always"]["level"] == 1
    print(f"first 200 on the health check {service.ready_after:.2f} s after docker run")
    assert service.ready_after < 10


def test_versions_json_is_served(service: Service) -> None:
    """``c2cwsgiutils-genversion`` ran at build time: versions.json names the commit and the packages."""
    status, body = get(service.url + "/c2c/versions.json")
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


def test_waitress_alternative(service_image: str) -> None:
    """The documented waitress command serves the same application through the c2c:// loader."""
    for waitress in _run(service_image, command=("pserve", "c2c:///app/production.ini")):
        status, body = get(waitress.url + "/c2c/versions.json")
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


@pytest.fixture
def postgres_network() -> Iterator[tuple[str, str]]:
    """A network with a PostgreSQL container reachable as ``db``; yields the network and container names."""
    suffix = uuid.uuid4().hex[:12]
    image, network, name = (
        f"c2cwsgiutils-test-postgres:{suffix}",
        f"c2cwsgiutils-test-{suffix}",
        f"db-{suffix}",
    )
    subprocess.run(
        [DOCKER, "build", "--quiet", "--tag", image, str(POSTGRES_DIR)],
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        timeout=600,
    )
    docker("network", "create", network)
    try:
        docker("run", "--detach", "--name", name, "--network", network, "--network-alias", "db", image)
        deadline = time.monotonic() + 30
        while docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() != "healthy":
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr
            time.sleep(0.5)
        yield network, name
    finally:
        docker("rm", "--force", "--volumes", name, check=False)
        docker("network", "rm", network, check=False)
        docker("image", "rm", "--force", image, check=False)


def test_plain_postgresql_url_works(service_image: str, postgres_network: tuple[str, str]) -> None:
    """A plain ``postgresql://`` URL reaches PostgreSQL with the image's driver; liveness ignores the DB."""
    network, database = postgres_network
    options = ("--network", network, "--env", "SQLALCHEMY_URL=postgresql://postgres@db/postgres")
    for service in _run(service_image, *options):
        status, body = get(service.url + "/c2c/health_check?max_level=1")
        assert status == 200, body
        assert "database" in json.loads(body)["successes"]
        docker("stop", "--time", "5", database)
        status, body = get(service.url + "/c2c/health_check?max_level=1", timeout=15)
        assert status == 500
        assert "database" in json.loads(body)["failures"]
        assert get(service.url + "/c2c/health_check?max_level=0")[0] == 200


def test_workers_follow_the_container_cpu_quota(service_image: str) -> None:
    """Without GUNICORN_WORKERS, a one-CPU container runs one gunicorn worker (the host has two CPUs)."""
    for service in _run(service_image, "--cpus", "1", "--env", "GUNICORN_WORKERS="):
        script = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"
        commands = docker("exec", service.name, "sh", "-c", script).stdout.splitlines()
        gunicorns = [
            command for command in commands if command.startswith("/venv/bin/python3 /venv/bin/gunicorn")
        ]
        assert len(gunicorns) == 2, commands  # the master and one worker
