from __future__ import annotations

import json

import pytest
import redis
from pyramid.config import Configurator

from c2cwsgiutils import _redis_checks, broadcast
from c2cwsgiutils.health_check import JsonCheckException

pytestmark = pytest.mark.usefixtures("clean_redis_state")

_SECRET = "a-secret-for-signing"
_AUTH = {"X-API-Key": _SECRET}


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
        "c2c.secret": _SECRET,
    }
    app = app_factory(settings, configure=HealthCheck)
    assert app.get("/c2c/health_check").json["successes"] == {}
    report = app.get("/c2c/health_check", params={"max_level": "2"}, headers=_AUTH).json
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


def _info(server):
    client = redis.Redis(port=server.port, decode_responses=True)
    try:
        return client.info()
    finally:
        client.close()


def test_anonymous_callers_read_no_redis_info(redis_factory, app_factory):
    """Without the secret the Redis check shows no INFO (version, OS, paths, memory); with it, all of it."""
    from c2cwsgiutils.health_check import HealthCheck

    server = redis_factory()
    info = _info(server)
    app = app_factory({"c2c.redis_url": server.url, "c2c.secret": _SECRET}, configure=HealthCheck)

    anonymous = app.get("/c2c/health_check", params={"max_level": "2"})
    assert set(anonymous.json["successes"][server.url]) == {"level", "timing"}
    for field in ("redis_version", "os", "executable", "config_file", "used_memory", "process_id"):
        assert f'"{field}"' not in anonymous.text
    for value in (info["executable"], info["config_file"], info["os"]):
        assert value not in anonymous.text
    health = app.get(
        "/c2c/health_check", params={"max_level": "2"}, headers={"Accept": "application/health+json"}
    )
    assert health.json["checks"][server.url][0]["status"] == "pass"
    assert info["executable"] not in health.text

    authorised = app.get("/c2c/health_check", params={"max_level": "2"}, headers=_AUTH).json
    result = authorised["successes"][server.url]["result"]
    assert result["info"]["redis_version"] == info["redis_version"]
    assert result["info"]["executable"] == info["executable"]
    assert result["info"]["config_file"] == info["config_file"]


def test_redis_failure_message_names_no_host_for_anonymous_callers(redis_factory, app_factory):
    """Redis down: anonymous callers read the kind of error, the secret shows the client's message."""
    from c2cwsgiutils.health_check import HealthCheck

    server = redis_factory()
    app = app_factory({"c2c.redis_url": server.url, "c2c.secret": _SECRET}, configure=HealthCheck)
    server.stop()

    anonymous = app.get("/c2c/health_check", params={"max_level": "2"}, status=500).json
    assert set(anonymous["failures"][server.url]) == {"message", "level", "timing"}
    assert anonymous["failures"][server.url]["message"] == "ConnectionError"
    authorised = app.get("/c2c/health_check", params={"max_level": "2"}, headers=_AUTH, status=500).json
    assert str(server.port) in authorised["failures"][server.url]["message"]
    assert "stacktrace" in authorised["failures"][server.url]


def test_the_redis_check_name_hides_the_password(redis_factory, app_factory):
    """The automatic check is named by the Redis URL with its password masked (the name is public)."""
    from c2cwsgiutils.health_check import HealthCheck

    server = redis_factory()
    client = redis.Redis(port=server.port)
    try:
        client.config_set("requirepass", "hunter2-redis")
    finally:
        client.close()
    url = f"redis://:hunter2-redis@127.0.0.1:{server.port}"
    app = app_factory({"c2c.redis_url": url, "c2c.secret": _SECRET}, configure=HealthCheck)
    report = app.get("/c2c/health_check", params={"max_level": "2"}, headers=_AUTH)
    assert set(report.json["successes"]) == {f"redis://:***@127.0.0.1:{server.port}"}
    assert "hunter2" not in report.text
