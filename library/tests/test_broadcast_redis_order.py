"""Broadcast through a real Redis: the callbacks' order, and every process answering without a secret."""

from __future__ import annotations

import os
import time

import pytest
import redis
import requests
from _gunicorn import each_worker, gunicorn
from pyramid.config import Configurator

from c2cwsgiutils import broadcast, testing
from c2cwsgiutils.broadcast.redis import RedisBroadcaster

pytestmark = pytest.mark.usefixtures("clean_redis_state")


@pytest.fixture(params=["unsigned", "signed"])
def pair(request, redis_url):
    """Two Redis broadcasters with connections of their own, as two processes would have."""
    secret = "a-test-secret" if request.param == "signed" else None
    clients = [redis.Redis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    broadcasters = [RedisBroadcaster("test_", client, client, secret=secret) for client in clients]
    yield broadcasters
    for broadcaster in broadcasters:
        broadcaster.close()
    for client in clients:
        client.close()


def test_callbacks_run_one_at_a_time_in_receive_order(pair):
    """A status broadcast sent after a slow one is answered once the slow one is done."""
    sender, receiver = pair
    state = {"fetch": "idle"}

    def fetch():
        state["fetch"] = "running"
        time.sleep(0.5)
        state["fetch"] = "done"

    receiver.subscribe("fetch", fetch)
    receiver.subscribe("status", lambda: dict(state))

    sender.broadcast("fetch", {}, expect_answers=False, timeout=1)
    answers = sender.broadcast("status", {}, expect_answers=True, timeout=5)

    assert [answer["fetch"] for answer in answers] == ["done"]


def test_many_callbacks_keep_their_order(pair):
    """Callbacks of unequal durations still run in the order their broadcasts were sent."""
    sender, receiver = pair
    seen = []

    def append(x):
        time.sleep(0.02 if x % 2 == 0 else 0)  # run concurrently, the odd ones would overtake
        seen.append(x)

    receiver.subscribe("append", append)
    receiver.subscribe("seen", lambda: list(seen))

    for number in range(20):
        sender.broadcast("append", {"x": number}, expect_answers=False, timeout=1)
    answers = sender.broadcast("seen", {}, expect_answers=True, timeout=5)

    assert answers == [list(range(20))]


def test_a_broadcast_from_a_callback_is_bounded_by_its_timeout(pair):
    """A callback broadcasting gets the answers of the other processes; its own is None after the timeout."""
    sender, receiver = pair
    sender.subscribe("inner", lambda: "sender")
    receiver.subscribe("inner", lambda: "receiver")
    receiver.subscribe("outer", lambda: receiver.broadcast("inner", {}, expect_answers=True, timeout=0.5))

    with testing.capture_logs("c2cwsgiutils.broadcast") as records:
        started = time.monotonic()
        answers = sender.broadcast("outer", {}, expect_answers=True, timeout=5)
        elapsed = time.monotonic() - started

    assert answers == [["sender", None]]
    assert elapsed < 4
    assert any("from a broadcast callback" in r.getMessage() for r in records)


@pytest.mark.server
def test_every_gunicorn_worker_answers_without_secret(redis_url, tmp_path):
    """With C2C_REDIS_URL and no secret, a broadcast reaches every process; the master warns once."""
    pytest.importorskip("gunicorn")
    env = {"C2C_REDIS_URL": redis_url, "C2C_DEBUG_VIEW_ENABLED": "1"}
    with gunicorn("_redis_app:app", env, tmp_path, workers=2) as url:
        workers = each_worker(
            lambda: requests.get(url + "/whoami", headers={"Connection": "close"}, timeout=5).json()
        )
        with Configurator(settings={"c2c.redis_url": redis_url}) as config:
            config.include("c2cwsgiutils.broadcast")
        broadcast.subscribe("c2c_dump_stacks", lambda: {"threads": []})

        expected = {*workers, os.getpid()}
        deadline = time.monotonic() + 15
        while True:
            answers = broadcast.broadcast("c2c_dump_stacks", expect_answers=True, timeout=5)
            pids = {a["pid"] for a in answers if isinstance(a, dict)}
            if expected <= pids or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    log = (tmp_path / "gunicorn.log").read_text(encoding="utf-8")

    assert expected <= pids  # (the preloaded master, subscribed before the fork, answers too)
    assert None not in answers
    assert all(isinstance(a["threads"], list) for a in answers)
    assert log.count("Broadcast messages go through Redis unsigned") == 1, log
