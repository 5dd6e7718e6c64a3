from __future__ import annotations

import pytest
import redis

from c2cwsgiutils import db

pytestmark = pytest.mark.usefixtures("clean_redis_state")
_SECRET = "a-test-secret"
_HEADERS = {"X-API-Key": _SECRET}
_URL = "/c2c/db/maintenance"


@pytest.fixture(autouse=True)
def _normal_routing():
    yield
    db.set_force_readonly(False)


def _app(app_factory, **settings):
    return app_factory(
        {
            "c2c.secret": _SECRET,
            "c2c.db_maintenance_view_enabled": "1",
            "c2c.enable_exception_handling": "1",
            **settings,
        },
        includes=("c2cwsgiutils.pyramid", "c2cwsgiutils.db_maintenance_view"),
    )


def test_disabled_by_default(app_factory):
    """Without C2C_DB_MAINTENANCE_VIEW_ENABLED the route does not exist."""
    app = app_factory(
        {"c2c.secret": _SECRET}, includes=("c2cwsgiutils.pyramid", "c2cwsgiutils.db_maintenance_view")
    )
    app.get(_URL, headers=_HEADERS, status=404)


def test_requires_the_secret(app_factory):
    """Switching the database to read-only needs the secret."""
    _app(app_factory).get(_URL, params={"readonly": "true"}, status=403)
    assert db.force_readonly is False


def test_without_redis(app_factory):
    """Without Redis the switch applies to the process and the stored state is unknown (null)."""
    app = _app(app_factory)
    assert app.get(_URL, headers=_HEADERS).json == {"status": 200, "current_readonly": None}
    assert app.get(_URL, params={"readonly": "true"}, headers=_HEADERS).json == {
        "status": 200,
        "readonly": True,
    }
    assert db.force_readonly is True
    app.get(_URL, params={"readonly": "false"}, headers=_HEADERS)
    assert db.force_readonly is False


def test_invalid_value_is_refused(app_factory):
    """A value that is neither true nor false is a 400 and changes nothing."""
    app = _app(app_factory)
    response = app.get(_URL, params={"readonly": "maybe"}, headers=_HEADERS, status=400)
    assert "readonly" in response.json["message"]
    assert db.force_readonly is False


def test_stored_in_redis_and_restored_at_startup(app_factory, redis_url):
    """The state is kept in Redis, reported from there, and re-applied by a new process."""
    app = _app(app_factory, **{"c2c.redis_url": redis_url})
    app.get(_URL, params={"readonly": "true"}, headers=_HEADERS)
    assert (
        redis.Redis.from_url(redis_url, decode_responses=True).get("c2c_db_maintenance_force_readonly")
        == "true"
    )
    assert app.get(_URL, headers=_HEADERS).json == {"status": 200, "current_readonly": True}

    db.set_force_readonly(False)  # as in a freshly started process
    _app(app_factory, **{"c2c.redis_url": redis_url})
    assert db.force_readonly is True


def test_sql_profiler_view(app_factory):
    """``{base}/sql_profiler?enable=1`` switches the profiler on, ``enable=0`` off."""
    from c2cwsgiutils import sql_profiler

    app = app_factory(
        {"c2c.secret": _SECRET, "c2c.sql_profiler_enabled": "1"},
        includes=("c2cwsgiutils.pyramid", "c2cwsgiutils.sql_profiler"),
    )
    try:
        app.get("/c2c/sql_profiler", status=403)
        assert app.get("/c2c/sql_profiler", params={"enable": "1"}, headers=_HEADERS).json == {
            "status": 200,
            "enabled": True,
        }
        assert sql_profiler.is_enabled()
        assert app.get("/c2c/sql_profiler", params={"enable": "0"}, headers=_HEADERS).json["enabled"] is False
        assert not sql_profiler.is_enabled()
    finally:
        sql_profiler.disable()
