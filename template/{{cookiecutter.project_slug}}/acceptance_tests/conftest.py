"""Fixtures of the acceptance tests: the stack of ``docker-compose.yaml``, started for the session.

``make acceptance`` builds the images first. The ``composition`` fixture starts the stack under a
unique project name (with ``docker compose`` v2 or ``docker-compose`` v1), waits until every
long-running service is healthy, and removes it at the end; a failing test's report gets the
services' ``ps`` and logs. ``DOCKER`` chooses the docker CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from c2cwsgiutils.acceptance import utils
from c2cwsgiutils.acceptance.composition import Composition
from c2cwsgiutils.acceptance.connection import Connection

# The hook that attaches the compose logs to the report of a failing test.
from c2cwsgiutils.acceptance.pytest_plugin import pytest_runtest_makereport  # noqa: F401

PROJECT = Path(__file__).resolve().parent.parent
SERVICE = "{{ cookiecutter.project_slug }}"
ONE_SHOT_SERVICES = frozenset({"alembic"})  # run to completion before the service starts
START_TIMEOUT_SECONDS = 180
ORIGIN = "https://example.com"


@pytest.fixture(scope="session")
def composition(request: pytest.FixtureRequest) -> Composition:
    """Start the stack and return it once every service is healthy (removed after the session)."""
    composition = Composition(request, SERVICE, PROJECT / "docker-compose.yaml")
    # Starting the service starts what it depends on, in order (the migrations included).
    composition.up(SERVICE, timeout=START_TIMEOUT_SECONDS)
    long_running = [name for name in composition.services() if name not in ONE_SHOT_SERVICES]
    composition.wait_healthy(*long_running, timeout=START_TIMEOUT_SECONDS)
    return composition


@pytest.fixture(scope="session")
def services(composition: Composition) -> list[str]:
    """Return the names of the services of the stack (``db``, ``db-replica``, ``redis``, ...)."""
    return composition.services()


@pytest.fixture(scope="session")
def base_url(composition: Composition) -> str:
    """Return the URL of the service on its published host port, once its health check answers."""
    url = f"http://localhost:{composition.port(SERVICE, 8080)}/"
    utils.wait_url(url + "c2c/health_check", timeout=START_TIMEOUT_SECONDS)
    return url


@pytest.fixture
def connection(base_url: str) -> Connection:
    """Return a client of the service that sends ``Origin: https://example.com`` for CORS checks."""
    return Connection(base_url, ORIGIN)
