from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
import redis
from pyramid.config import Configurator

from c2cwsgiutils import broadcast, redis_utils, testing
from c2cwsgiutils.broadcast import local
from c2cwsgiutils.broadcast.redis import RedisBroadcaster

pytestmark = pytest.mark.usefixtures("clean_redis_state")
_SECRET = "a-test-secret"


def _include(settings):
    with Configurator(settings=settings) as config:
        config.include("c2cwsgiutils.broadcast")


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def pair(redis_url):
    """Two Redis broadcasters sharing a Redis, as two processes would."""
    client_a = redis.Redis.from_url(redis_url, decode_responses=True)
    client_b = redis.Redis.from_url(redis_url, decode_responses=True)
    first = RedisBroadcaster("test_", client_a, client_a, secret=_SECRET)
    second = RedisBroadcaster("test_", client_b, client_b, secret=_SECRET)
    yield first, second
    first.close()
    second.close()
    client_a.close()
    client_b.close()


def test_local_broadcast_calls_the_subscriber():
    """Without Redis the subscriber of this process answers, with its host and pid."""
    _include({})
    broadcast.subscribe("double", lambda value: {"value": value * 2})

    answers = broadcast.broadcast("double", {"value": 21}, expect_answers=True)

    assert answers == [{"value": 42, "hostname": answers[0]["hostname"], "pid": os.getpid()}]
    assert broadcast.broadcast("double", {"value": 1}) is None
    assert broadcast.broadcast("nobody", expect_answers=True) == []


def test_local_broadcast_propagates_exceptions():
    """A failing local subscriber raises in the caller, as in the reference."""
    broadcaster = local.LocalBroadcaster({"fail": lambda: 1 / 0})

    with pytest.raises(ZeroDivisionError):
        broadcaster.broadcast("fail", {}, expect_answers=True, timeout=1)


def test_decorator_broadcasts_keyword_calls():
    """A decorated function runs through the broadcast and returns the answers."""

    @broadcast.decorator(expect_answers=True)
    def square(value):
        return value * value

    assert square(value=3) == [9]
    assert "c2c_decorated_test_broadcast.square" in broadcast.get_broadcaster().get_subscribers()


def test_redis_without_secret_stays_local(redis_url):
    """Redis without any secret cannot sign the messages: the broadcaster stays local, with a warning."""
    with testing.capture_logs("c2cwsgiutils.broadcast") as records:
        _include({"c2c.redis_url": redis_url})

    assert isinstance(broadcast.get_broadcaster(), local.LocalBroadcaster)
    assert any("C2C_BROADCAST_SECRET" in r.getMessage() for r in records)


def test_switch_from_local_keeps_subscriptions(redis_url):
    """Subscriptions made before the setup are moved to the Redis broadcaster."""
    broadcast.subscribe("early", lambda: "early answer")

    _include({"c2c.redis_url": redis_url, "c2c.secret": _SECRET})

    assert isinstance(broadcast.get_broadcaster(), RedisBroadcaster)
    assert broadcast.broadcast("early", expect_answers=True) == ["early answer"]


def test_redis_broadcast_reaches_every_broadcaster(pair):
    """Every subscribed broadcaster answers; a failing receiver answers a 500 dict."""
    first, second = pair
    first.subscribe("hello", lambda name: {"hello": name, "who": "first"})
    second.subscribe("hello", lambda name: {"hello": name, "who": "second"})
    second.subscribe("fail", lambda: 1 / 0)
    first.subscribe("fail", lambda: "ok")

    answers = first.broadcast("hello", {"name": "you"}, expect_answers=True, timeout=5)
    failures = first.broadcast("fail", {}, expect_answers=True, timeout=5)

    assert sorted(a["who"] for a in answers) == ["first", "second"]
    assert all(a["pid"] == os.getpid() and a["hello"] == "you" for a in answers)
    assert sorted(map(str, failures)) == sorted(
        ["ok", str({"status": 500, "message": "division by zero", **_host(failures)})]
    )


def _host(answers):
    failed = next(a for a in answers if isinstance(a, dict))
    return {"hostname": failed["hostname"], "pid": failed["pid"]}


def test_missing_answers_are_padded(pair):
    """An answer that does not come in time is a None, and a warning is logged."""
    first, second = pair
    first.subscribe("slow", lambda: "fast")
    second.subscribe("slow", lambda: time.sleep(2) or "slow")

    with testing.capture_logs("c2cwsgiutils.broadcast") as records:
        answers = first.broadcast("slow", {}, expect_answers=True, timeout=0.5)

    assert sorted(map(str, answers)) == ["None", "fast"]
    assert any("missing" in r.getMessage() for r in records)


def test_forged_messages_are_dropped(pair, redis_url):
    """Unsigned (redis-cli) and badly signed messages run nothing and are logged."""
    first, _second = pair
    called = threading.Event()
    first.subscribe("level", lambda **kwargs: called.set())
    port = redis_url.rsplit(":", 1)[1]
    other = RedisBroadcaster("test_", redis.Redis.from_url(redis_url), None, secret="another secret")

    with testing.capture_logs("c2cwsgiutils.broadcast") as records:
        subprocess.run(
            ["redis-cli", "-p", port, "PUBLISH", "test_level", '{"params": {"name": "root"}}'],
            check=True,
            capture_output=True,
        )
        other.broadcast("level", {}, expect_answers=False, timeout=1)
        assert _wait_for(lambda: any("not authentic" in r.getMessage() for r in records), 5)
        time.sleep(0.3)
    other.close()

    assert not called.is_set()
    warnings = [r for r in records if "not authentic" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: one line for both messages


def test_redis_outage_degrades_to_local_and_recovers(redis_factory):
    """Redis down: the broadcast answers locally with one warning; Redis back: it goes through Redis."""
    server = redis_factory()
    _include({"c2c.redis_url": server.url, "c2c.secret": _SECRET, "c2c.redis_pubsub_retry_delay": "0.1"})
    broadcast.subscribe("ping", lambda: "pong")
    other_client = redis.Redis.from_url(server.url, decode_responses=True)
    other = RedisBroadcaster("broadcast_api_", other_client, other_client, secret=_SECRET)
    other.subscribe("ping", lambda: "other pong")
    try:
        assert sorted(broadcast.broadcast("ping", expect_answers=True, timeout=5)) == ["other pong", "pong"]

        with testing.capture_logs("c2cwsgiutils") as records:
            server.stop()
            assert broadcast.broadcast("ping", expect_answers=True) == ["pong"]
            assert broadcast.broadcast("ping", expect_answers=True) == ["pong"]
            time.sleep(0.5)  # the listeners notice the outage too
        warnings = [r for r in records if r.levelname == "WARNING"]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]

        server.start()

        def recovered():
            answers = broadcast.broadcast("ping", expect_answers=True, timeout=1)
            return sorted(map(str, answers)) == ["other pong", "pong"]

        assert _wait_for(recovered, 15)
        assert not redis_utils.outage.down
    finally:
        other.close()
        other_client.close()


def test_startup_with_redis_down(redis_factory):
    """Building the application while Redis is down works, and broadcasts answer locally."""
    server = redis_factory()
    server.stop()

    _include({"c2c.redis_url": server.url, "c2c.secret": _SECRET})
    broadcast.subscribe("ping", lambda: "pong")

    assert broadcast.broadcast("ping", expect_answers=True) == ["pong"]
    server.start()
    assert _wait_for(lambda: broadcast.broadcast("ping", expect_answers=True, timeout=1) == ["pong"])
