"""The health check, versions and errors of the running stack."""

from __future__ import annotations

import os
from typing import Any

from c2cwsgiutils.acceptance.connection import CacheExpected, Connection


def get_c2c(connection: Connection, path: str, **kwargs: Any) -> Any:
    """GET a JSON ``/c2c`` page (not a CORS service: no ``Origin`` sent, caching not checked)."""
    return connection.get_json(f"c2c/{path}", cors=False, cache_expected=CacheExpected.DONT_CARE, **kwargs)


def test_liveness_runs_no_check(connection: Connection) -> None:
    """Level 0 (what the container's HEALTHCHECK asks) answers 200 without running any check."""
    body = get_c2c(connection, "health_check", params={"max_level": "0"})
    assert body["successes"] == {}
    assert body["failures"] == {}


def test_vital_checks(connection: Connection, services: list[str]) -> None:
    """Level 1: the service's own check and, with a database, both engines (primary and replica)."""
    body = get_c2c(connection, "health_check", params={"max_level": "1"})
    assert body["failures"] == {}
    assert "uptime" in body["successes"]
    engines = [name for name in body["successes"] if name.startswith("db_engine_")]
    assert len(engines) == (2 if "db-replica" in services else 0)


def test_every_check(connection: Connection, services: list[str]) -> None:
    """Level 2: the alembic version (with a database), Redis and the version check (with Redis)."""
    body = get_c2c(connection, "health_check", params={"max_level": "2"})
    assert body["failures"] == {}
    names = set(body["successes"])
    assert any(name.startswith("alembic_") for name in names) == ("db" in services)
    assert ("redis://redis:6379/0" in names) == ("redis" in services)
    assert ("version" in names) == ("redis" in services)


def test_versions(connection: Connection) -> None:
    """``/c2c/versions.json`` tells the git hash and the installed packages, to whoever has the secret."""
    connection.get_raw(
        "c2c/versions.json", expected_status=403, cors=False, cache_expected=CacheExpected.DONT_CARE
    )
    secret = os.environ.get("C2C_SECRET", "change-me")
    versions = get_c2c(connection, "versions.json", headers={"X-API-Key": secret})
    assert versions["main"]["git_hash"] == os.environ.get("GIT_HASH", versions["main"]["git_hash"])
    assert versions["main"]["git_hash"]
    assert "c2cwsgiutils" in versions["packages"]


def test_unknown_url_is_a_json_error(connection: Connection) -> None:
    """An unknown URL answers a JSON 404 without a stack trace (production mode)."""
    response = connection.get_raw(
        "no/such/page", expected_status=404, cors=False, cache_expected=CacheExpected.DONT_CARE
    )
    assert response.json()["status"] == 404
    assert "Traceback" not in response.text
