"""The health check metrics of the catalogue: failure gauge, DB check timings, alembic version."""

from __future__ import annotations

import os

import pytest
import webtest
from prometheus_client import CollectorRegistry

import c2cwsgiutils.db
from c2cwsgiutils import _metrics, testing
from c2cwsgiutils.health_check import HealthCheck

_ALEMBIC_INI = os.path.join(os.path.dirname(__file__), "alembic_app", "alembic.ini")


@pytest.fixture
def registry():
    registry = CollectorRegistry()
    _metrics.use_registry(registry, reread_settings=True)
    yield registry
    _metrics.use_registry(None, reread_settings=True)


def _not_happy(request):
    raise RuntimeError("not happy")


def test_failure_gauge_follows_the_last_run(registry):
    """``health_check_failure{name}`` is 1 for a failing check and 0 for a passing one."""

    def configure(config):
        checks = HealthCheck(config)
        checks.add_custom_check("good", lambda request: "ok")
        checks.add_custom_check("bad", _not_happy)

    app = testing.make_test_app({}, configure=configure)
    app.get("/c2c/health_check", status=500)
    assert registry.get_sample_value("c2cwsgiutils_health_check_failure", {"name": "good"}) == 0
    assert registry.get_sample_value("c2cwsgiutils_health_check_failure", {"name": "bad"}) == 1


def test_db_timing_and_alembic_version(registry, postgresql):
    """DB checks are timed per connection; a passing alembic check sets the version gauge."""
    from alembic import command
    from alembic.config import Config

    alembic_config = Config(_ALEMBIC_INI)
    alembic_config.set_main_option("sqlalchemy.url", postgresql.url_rw)
    command.upgrade(alembic_config, "head")

    def configure(config):
        factory = c2cwsgiutils.db.init(config, "sqlalchemy", "sqlalchemy_slave")
        checks = HealthCheck(config)
        checks.add_db_session_check(factory)
        checks.add_alembic_check(factory, _ALEMBIC_INI, 1)

    wsgi_app = testing.make_app(
        {"sqlalchemy.url": postgresql.url_rw, "sqlalchemy_slave.url": postgresql.url_ro}, configure=configure
    )
    factory = wsgi_app.registry["dbsession_factory"]
    try:
        webtest.TestApp(wsgi_app).get("/c2c/health_check")
    finally:
        factory.ro_engine.dispose()
        factory.rw_engine.dispose()
    for connection in ("sqlalchemy", "sqlalchemy_slave"):
        labels = {"configuration": "<default>", "connection": connection, "check": "database"}
        assert registry.get_sample_value("c2cwsgiutils_health_check_db_seconds_count", labels) == 1
    labels = {"version": "b2c3d4e5f6a7", "name": "alembic", "configuration": _ALEMBIC_INI}
    assert registry.get_sample_value("c2cwsgiutils_alembic_version", labels) == 1
