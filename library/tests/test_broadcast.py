from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time

import pytest
import redis
from pyramid.config import Configurator

from c2cwsgiutils import broadcast, redis_utils, testing
from c2cwsgiutils.broadcast import _messages, local
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


def test_redis_without_secret_broadcasts_unsigned_with_one_warning(redis_url):
    """Redis without a secret: broadcasts go through Redis unsigned, and one warning says how to sign."""
    with testing.capture_logs("c2cwsgiutils.broadcast") as records:
        _include({"c2c.redis_url": redis_url})
        _include({"c2c.redis_url": redis_url})  # a second application of the same process
    other_client = redis.Redis.from_url(redis_url, decode_responses=True)
    other = RedisBroadcaster("broadcast_api_", other_client, other_client)
    other.subscribe("who", lambda: "other process")
    broadcast.subscribe("who", lambda: "this process")
    try:
        answers = broadcast.broadcast("who", expect_answers=True, timeout=5)
    finally:
        other.close()
        other_client.close()

    assert sorted(answers) == ["other process", "this process"]
    assert not broadcast.get_broadcaster().signed
    warnings = [r.getMessage() for r in records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "unsigned" in warnings[0]
    assert "C2C_BROADCAST_SECRET or C2C_SECRET" in warnings[0]


def test_redis_with_secret_does_not_warn(redis_url):
    """With a secret the messages are signed and nothing is said about unsigned messages."""
    with testing.capture_logs("c2cwsgiutils.broadcast") as records:
        _include({"c2c.redis_url": redis_url, "c2c.broadcast_secret": _SECRET})

    assert broadcast.get_broadcaster().signed
    assert [r.getMessage() for r in records if r.levelname == "WARNING"] == []


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


@pytest.fixture
def client_factory(redis_url):
    """Redis clients of their own (one per simulated process), closed at the end of the test."""
    clients = []

    def make():
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_signed_process_refuses_unsigned_messages(client_factory):
    """A process with a secret runs nothing for the reference's unsigned messages, and logs them."""
    signed = RedisBroadcaster("test_", client_factory(), None, secret=_SECRET)
    unsigned = RedisBroadcaster("test_", client_factory(), None)
    called = threading.Event()
    signed.subscribe("level", lambda **kwargs: called.set())
    try:
        with testing.capture_logs("c2cwsgiutils.broadcast") as records:
            answers = unsigned.broadcast("level", {"name": "root"}, expect_answers=True, timeout=0.5)
    finally:
        signed.close()
        unsigned.close()

    assert answers == [None]  # the signed process received it (PUBLISH counted it) but did not answer
    assert not called.is_set()
    assert any("not authentic (last: unsigned on test_level)" in r.getMessage() for r in records)


def test_unsigned_process_ignores_signed_messages(client_factory):
    """A process without a secret cannot verify a signed message: it runs nothing and says why."""
    signed = RedisBroadcaster("test_", client_factory(), None, secret=_SECRET)
    unsigned = RedisBroadcaster("test_", client_factory(), None)
    called = threading.Event()
    unsigned.subscribe("level", lambda **kwargs: called.set())
    try:
        with testing.capture_logs("c2cwsgiutils.broadcast") as records:
            answers = signed.broadcast("level", {"name": "root"}, expect_answers=True, timeout=0.5)
    finally:
        signed.close()
        unsigned.close()

    assert answers == [None]
    assert not called.is_set()
    messages = [
        r.getMessage() for r in records if "cannot read (last: signed on test_level)" in r.getMessage()
    ]
    assert len(messages) == 1
    assert "C2C_BROADCAST_SECRET or C2C_SECRET" in messages[0]


def test_unsigned_wire_format_is_the_reference(client_factory):
    """Without a secret, requests and answers are the reference's JSON, readable by any client."""
    unsigned = RedisBroadcaster("test_", client_factory(), None)
    unsigned.subscribe("double", lambda value: {"value": 2 * value})
    spy = client_factory().pubsub(ignore_subscribe_messages=True)
    spy.psubscribe("test_*")
    publisher = client_factory()
    try:
        # As the reference sends it: the receiver answers on the given answer_channel.
        publisher.publish(
            "test_double", json.dumps({"params": {"value": 21}, "answer_channel": "test_reply"})
        )
        received = _next_message(spy)
        reply = _next_message(spy)
        # As the reference receives it: the request is {"params", "answer_channel"}.
        assert unsigned.broadcast("double", {"value": 2}, expect_answers=True, timeout=5)[0]["value"] == 4
        request = _next_message(spy)
        answer = _next_message(spy)
    finally:
        spy.close()
        unsigned.close()

    assert json.loads(received["data"]) == {"params": {"value": 21}, "answer_channel": "test_reply"}
    assert reply["channel"] == "test_reply"
    assert json.loads(reply["data"]) == {"value": 42, "hostname": socket.gethostname(), "pid": os.getpid()}
    assert request["channel"] == "test_double"
    sent = json.loads(request["data"])
    assert sent == {"params": {"value": 2}, "answer_channel": sent["answer_channel"]}
    assert sent["answer_channel"].startswith("test_")
    assert answer["channel"] == sent["answer_channel"]
    assert json.loads(answer["data"]) == {"value": 4, "hostname": socket.gethostname(), "pid": os.getpid()}


def _next_message(pubsub, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            return message
    raise AssertionError("no message")


def test_a_captured_signed_message_published_again_runs_once(pair, redis_url):
    """A signed "set the level" captured on Redis and published again is dropped: the callback ran once."""
    sender, receiver = pair
    calls = []
    receiver.subscribe("level", lambda name, level: calls.append((name, level)) or "set")
    receiver.subscribe("calls", lambda: list(calls))
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    spy = raw.pubsub(ignore_subscribe_messages=True)
    spy.subscribe("test_level")
    try:
        assert _wait_for(lambda: raw.pubsub_numsub("test_level")[0][1] == 2)
        first = sender.broadcast("level", {"name": "root", "level": "DEBUG"}, expect_answers=True, timeout=5)
        assert first[0].startswith("set")
        captured = _next_message(spy)["data"]
        with testing.capture_logs("c2cwsgiutils.broadcast") as records:
            assert raw.publish("test_level", captured) == 2  # the receiver got it again
            # Callbacks run in receive order: once "calls" answers, the replay has been handled.
            answers = sender.broadcast("calls", {}, expect_answers=True, timeout=5)
    finally:
        spy.close()
        raw.close()

    assert answers == [[["root", "DEBUG"]]]
    assert calls == [("root", "DEBUG")]
    assert any("not authentic (last: replayed on test_level)" in r.getMessage() for r in records)


def test_the_ids_remembered_against_replays_are_bounded():
    """Past max_ids the oldest ids are forgotten, yet none of the messages can be replayed."""
    codec = _messages.SignedCodec(_SECRET, max_ids=3)
    sealed = [codec.seal("test_x", {"params": {"n": n}}) for n in range(5)]

    with testing.capture_logs("c2cwsgiutils.broadcast"):
        first = [codec.open("test_x", data) for data in sealed]
        again = [codec.open("test_x", data) for data in sealed]

    assert first == [(True, {"params": {"n": n}}) for n in range(5)]
    assert again == [(False, None)] * 5
    assert len(codec._seen._ids) == 3
