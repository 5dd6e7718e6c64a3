"""Fixtures of the acceptance suite: the compose project and clients of its services.

The project is started once per session with the library's ``Composition`` (unique project name,
leftovers of crashed runs removed, every service's logs attached to failing tests). Set
``C2CACC_PROJECT=<name>`` to run the suite against a project that is already up (while developing).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
from c2cwsgiutils.acceptance.composition import Composition
from c2cwsgiutils.acceptance.connection import Connection

pytest_plugins = ["c2cwsgiutils.acceptance.pytest_plugin"]

HERE = Path(__file__).resolve().parent.parent
COMPOSE_FILE = HERE / "docker-compose.yaml"
SECRET = "acceptance-secret"  # the test stack's C2C_SECRET
ORIGIN = "http://example.com"
IN_COMPOSE = os.environ.get("C2CACC_IN_COMPOSE") == "1"
"""The suite runs in the ``tests`` service of the composition (else on the host)."""
APPS = ["app", "app2", "app-waitress"]
"""gunicorn with 1 worker, gunicorn with 2 workers (JSON logs), waitress."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the resilience tests last: they stop and kill services."""
    items.sort(key=lambda item: item.get_closest_marker("resilience") is not None)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers."""
    config.addinivalue_line("markers", "resilience: stops, kills and restarts services (runs last)")


@pytest.fixture(scope="session")
def composition(request: pytest.FixtureRequest) -> Composition:
    """The compose project, up and healthy."""
    existing = os.environ.get("C2CACC_PROJECT")
    if existing:
        composition = Composition(None, "c2cacc", COMPOSE_FILE, cleanup=False)
        composition.project_name = existing
        composition.wait_healthy(*_stack_services(composition), timeout=240)
        return composition
    composition = Composition(request, "c2cacc", COMPOSE_FILE)
    composition.up(*_stack_services(composition), timeout=240)
    return composition


def _stack_services(composition: Composition) -> list[str]:
    """Every service but the test runner (``tests``, started with ``docker-compose run``)."""
    return [service for service in composition.services() if service != "tests"]


class Stack:
    """Host URLs of the published ports of the project's services."""

    def __init__(self, composition: Composition) -> None:
        """Look the ports up once."""
        self.composition = composition
        self._ports: dict[tuple[str, int], int] = {}

    def url(self, service: str, port: int = 8080) -> str:
        """Return the URL of a service's container port, from the host or from the runner container.

        On the host: ``http://127.0.0.1:<published port>/``; in the ``tests`` service
        (``C2CACC_IN_COMPOSE=1``): ``http://<service>:<port>/``.
        """
        if IN_COMPOSE:
            return f"http://{service}:{port}/"
        key = (service, port)
        if key not in self._ports:
            self._ports[key] = self.composition.port(service, port)
        return f"http://127.0.0.1:{self._ports[key]}/"

    def connection(self, service: str) -> Connection:
        """Return a client of the application ``service``."""
        return Connection(self.url(service), ORIGIN)

    def logs(self, service: str) -> str:
        """Return the logs of a service."""
        return self.composition.logs(service)

    def exec(self, service: str, *command: str) -> str:
        """Run a command in a service's container."""
        return self.composition.exec(service, *command)

    def scrape(self, service: str) -> str:
        """Return the Prometheus exposition of a service's metrics port."""
        response = requests.get(self.url(service, 9090), timeout=30)
        response.raise_for_status()
        return response.text


@pytest.fixture(scope="session")
def stack(composition: Composition) -> Stack:
    """The services of the project."""
    return Stack(composition)


@pytest.fixture(params=APPS)
def app_name(request: pytest.FixtureRequest) -> str:
    """Each application service in turn."""
    return str(request.param)


@pytest.fixture
def app(stack: Stack, app_name: str) -> Connection:
    """A client of each application service in turn."""
    return stack.connection(app_name)


@pytest.fixture
def auth() -> dict[str, str]:
    """Headers of an authenticated admin request."""
    return {"X-API-Key": SECRET}


@pytest.fixture
def fresh_session() -> Any:
    """A function that GETs a URL on a new connection (so gunicorn may pick another worker)."""

    def get(url: str, method: str = "GET", **kwargs: Any) -> requests.Response:
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        return requests.request(method, url, headers=headers, timeout=30, **kwargs)

    return get


def json_lines(logs: str) -> list[dict[str, Any]]:
    """The JSON log lines of ``docker-compose logs`` output (the ``service_1  | `` prefix removed)."""
    lines = []
    for line in logs.splitlines():
        payload = line.partition("| ")[2]
        if payload.startswith("{"):
            lines.append(json.loads(payload))
    return lines
