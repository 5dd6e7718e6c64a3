from __future__ import annotations

import json

import pytest
from pyramid.config import Configurator

from c2cwsgiutils import _redis_checks, broadcast
from c2cwsgiutils.health_check import JsonCheckException

pytestmark = pytest.mark.usefixtures("clean_redis_state")


def test_redis_check_reports_and_fails_when_down(redis_factory):
    """The Redis check reports INFO and DBSIZE, and fails when Redis is down."""
    server = redis_factory()
    check = _redis_checks.make_redis_check({"c2c.redis_url": server.url})

    result = check(None)
    server.stop()

    assert result["dbsize"] == 0
    assert "redis_version" in result["info"]
    with pytest.raises(Exception, match="onnect"):
        check(None)


def test_redis_check_sentinel_info(redis_sentinel):
    """In Sentinel mode the check reports the sentinel's view of the masters."""
    check = _redis_checks.make_redis_check(
        {"c2c.redis_sentinels": redis_sentinel.sentinels, "c2c.redis_servicename": "mymaster"}
    )
    assert "mymaster" in check(None)["sentinel"]["masters"]


def test_redis_check_without_configuration():
    """Without Redis the check fails with a clear message."""
    with pytest.raises(RuntimeError, match="not configured"):
        _redis_checks.make_redis_check({})(None)


def test_version_check(tmp_path):
    """The version check passes when every process answers the same git hash, and fails otherwise."""
    versions = tmp_path / "versions.json"
    versions.write_text(json.dumps({"main": {"git_hash": "abc"}, "packages": {}}))
    with Configurator(settings={"c2c.versions_path": str(versions)}) as config:
        config.include("c2cwsgiutils.version")
        config.include("c2cwsgiutils.broadcast")
        check = _redis_checks.make_version_check(config.registry)

    assert check(None) == {"version": "abc"}
    broadcast.subscribe("c2c_health_check_version", lambda: {"version": "other"})
    with pytest.raises(JsonCheckException, match="Multiple versions"):
        check(None)


def test_health_check_adds_redis_and_version_checks(redis_factory, tmp_path, app_factory):
    """With Redis and versions.json configured, HealthCheck adds both checks at level 2."""
    from c2cwsgiutils.health_check import HealthCheck

    server = redis_factory()
    versions = tmp_path / "versions.json"
    versions.write_text(json.dumps({"main": {"git_hash": "abc"}, "packages": {}}))
    settings = {
        "c2c.redis_url": server.url,
        "c2c.versions_path": str(versions),
        "c2c.secret": "a-secret-for-signing",
    }
    app = app_factory(settings, configure=HealthCheck)
    assert app.get("/c2c/health_check").json["successes"] == {}
    report = app.get("/c2c/health_check", params={"max_level": "2"}).json
    assert report["successes"][server.url]["result"]["dbsize"] == 0
    assert report["successes"]["version"]["result"]["version"] == "abc"
    server.stop()
    down = app.get("/c2c/health_check", params={"max_level": "2"}, status=500).json
    assert server.url in down["failures"]


def test_add_redis_check_needs_redis_or_a_name(app_factory):
    """Without Redis configured, add_redis_check without a name is a clear error."""
    from c2cwsgiutils.health_check import HealthCheck

    with pytest.raises(RuntimeError, match="No Redis configured"):
        app_factory({}, configure=lambda config: HealthCheck(config).add_redis_check())
