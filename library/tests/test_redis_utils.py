from __future__ import annotations

import os
import time

import pytest
import redis

from c2cwsgiutils import redis_utils, testing

pytestmark = pytest.mark.usefixtures("clean_redis_state")


def test_not_configured_is_logged_once():
    """Without configuration get() returns Nones and logs it only once."""
    with testing.capture_logs("c2cwsgiutils.redis_utils") as records:
        assert redis_utils.get({}) == (None, None, None)
        assert redis_utils.get({}) == (None, None, None)
    assert [r.getMessage() for r in records].count("No Redis configuration found") == 1


def test_url_mode_with_options(redis_url):
    """URL mode: one client used as master and replica, with the given options, decoding strings."""
    master, slave, sentinel = redis_utils.get(
        {"c2c.redis_url": redis_url, "c2c.redis_options": "socket_timeout=3,health_check_interval=10"}
    )
    master.set("key", "value")
    assert slave.get("key") == "value"
    assert master is slave
    assert sentinel is None
    assert master.connection_pool.connection_kwargs["socket_timeout"] == 3
    assert redis_utils.get() == (master, slave, sentinel)


def test_sentinel_mode(redis_sentinel):
    """Sentinel mode: the master and the replica come from the sentinel, in the chosen db."""
    master, slave, sentinel = redis_utils.get(
        {
            "c2c.redis_sentinels": redis_sentinel.sentinels,
            "c2c.redis_servicename": redis_sentinel.service,
            "c2c.redis_db": "2",
            "c2c.redis_url": "redis://ignored:1",
        }
    )
    master.set("sentinel-key", "v")
    assert sentinel is not None
    assert (
        redis.Redis(port=redis_sentinel.master.port, db=2, decode_responses=True).get("sentinel-key") == "v"
    )
    deadline = time.monotonic() + 10
    while slave.get("sentinel-key") != "v":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert slave.connection_pool.get_master_address()[1] == redis_sentinel.master.port


def test_invalid_options_are_a_configuration_error():
    """A malformed C2C_REDIS_OPTIONS is reported with the knob names."""
    from pyramid.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="C2C_REDIS_OPTIONS"):
        redis_utils.get({"c2c.redis_url": "redis://127.0.0.1:1", "c2c.redis_options": "novalue"})


def test_forked_child_gets_new_clients(redis_url):
    """A forked process never reuses the clients of its parent."""
    master, _slave, _sentinel = redis_utils.get({"c2c.redis_url": redis_url})
    master.ping()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  # the child reports through the pipe
        try:
            child_master = redis_utils.get({"c2c.redis_url": redis_url})[0]
            ok = child_master is not master and child_master.ping()
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    result = os.read(read, 1)
    os.waitpid(pid, 0)
    assert result == b"1"
    assert master.ping()


def test_pubsub_thread_survives_a_restart(redis_factory):
    """The listener logs the outage and the recovery once each, and receives messages again."""
    server = redis_factory()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    received = []
    pubsub = client.pubsub()
    pubsub.subscribe(chan=received.append)
    thread = redis_utils.PubSubWorkerThread(pubsub, name="test", retry_delay=0.05, get_message_timeout=0.1)
    thread.start()
    try:
        with testing.capture_logs("c2cwsgiutils.redis_utils") as records:
            server.stop()
            time.sleep(0.5)
            server.start()
            deadline = time.monotonic() + 10
            while not received:
                client.publish("chan", "hello")
                assert time.monotonic() < deadline
                time.sleep(0.05)
        messages = [r.getMessage() for r in records if r.levelname in ("WARNING", "INFO")]
        assert sum("Redis connection problem" in m for m in messages) == 1
        assert messages.count("Redis is back") == 1
        assert received[0]["data"] == "hello"
    finally:
        thread.stop()
        client.close()
    assert not thread.is_alive()
