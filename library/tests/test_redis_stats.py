from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from c2cwsgiutils import _metrics, redis_stats, testing

redis = pytest.importorskip("redis")


@pytest.fixture
def registry():
    """A fresh Prometheus registry, and the original redis client afterwards."""
    reg = CollectorRegistry()
    _metrics.use_registry(reg, reread_settings=True)
    redis_stats.uninstall()
    yield reg
    redis_stats.uninstall()
    _metrics.use_registry(None, reread_settings=True)


def _count(registry, command):
    return registry.get_sample_value("c2cwsgiutils_redis_seconds_count", {"command": command}) or 0


def test_commands_are_timed_and_double_include_wraps_once(registry, redis_url):
    """Redis commands are counted by name, once each, even when the module is included twice."""
    testing.make_app({}, includes=("c2cwsgiutils.redis_stats",))
    redis_stats.includeme()
    client = redis.Redis.from_url(redis_url)
    client.set("key", "value")
    assert client.get("key") == b"value"
    client.close()
    assert _count(registry, "SET") == 1
    assert _count(registry, "GET") == 1
    assert not hasattr(redis.client.Redis.execute_command.__wrapped__, "_c2cwsgiutils_original")


def test_failed_commands_are_timed_too(registry):
    """A command that cannot reach Redis is still timed and the error reaches the caller."""
    redis_stats.includeme()
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()
    assert _count(registry, "PING") == 1


def test_disabled_by_setting(registry):
    """C2C_TRACK_REDIS=false leaves the redis client untouched."""
    testing.make_app({"c2c.track_redis": "false"}, includes=("c2cwsgiutils.redis_stats",))
    assert not hasattr(redis.client.Redis.execute_command, "_c2cwsgiutils_original")


def test_a_failing_timing_never_fails_the_command(registry, redis_url, monkeypatch):
    """Timing that raises (a metrics bug) is logged once per cause; every command answers."""
    import logging

    from c2cwsgiutils import _safety

    monkeypatch.setattr(_safety, "reraise_internal_errors", False)
    redis_stats.includeme()

    def broken():
        raise RuntimeError("no metrics today")

    monkeypatch.setattr(_metrics, "get", broken)
    client = redis.Redis.from_url(redis_url)
    with testing.capture_logs("c2cwsgiutils", level=logging.DEBUG) as records:
        for number in range(3):
            assert client.set("key", str(number))
            assert client.get("key") == str(number).encode()
    client.close()
    failures = [r for r in records if "timing a Redis command" in r.getMessage()]
    assert [r.levelname for r in failures] == ["ERROR"] + ["DEBUG"] * 5


def test_an_unknown_execute_command_signature_is_not_wrapped(registry):
    """A redis release whose Redis.execute_command differs is left alone, with one warning."""
    import types

    class Redis:
        def execute_command(self, **options):
            return options

    original = Redis.execute_command
    with testing.capture_logs("c2cwsgiutils") as records:
        redis_stats._patch(types.SimpleNamespace(Redis=Redis))
    assert Redis.execute_command is original
    assert [r.levelname for r in records] == ["WARNING"]
    assert "unknown signature" in records[0].getMessage()


def test_a_method_wrapped_by_another_integration_is_timed(registry, redis_url):
    """Sentry's Redis integration wraps execute_command as (self, name, *args, **kwargs): still timed."""
    original = redis.client.Redis.execute_command

    def other_integration(self, name, *args, **kwargs):
        return original(self, name, *args, **kwargs)

    redis.client.Redis.execute_command = other_integration
    try:
        redis_stats.includeme()
        client = redis.Redis.from_url(redis_url)
        client.set("key", "value")
        client.close()
        assert _count(registry, "SET") == 1
    finally:
        redis_stats.uninstall()
        redis.client.Redis.execute_command = original
