from __future__ import annotations

import logging
import time

import pytest
import redis
import requests
from _gunicorn import gunicorn

from c2cwsgiutils import logging_view, testing

pytestmark = pytest.mark.usefixtures("clean_redis_state")
_SECRET = "a-test-secret"
_HEADERS = {"X-API-Key": _SECRET}
_INCLUDES = ("c2cwsgiutils.pyramid", "c2cwsgiutils.logging_view")


def _app(app_factory, **settings):
    return app_factory({"c2c.secret": _SECRET, "c2c.log_view_enabled": "1", **settings}, includes=_INCLUDES)


def test_disabled_by_default(app_factory):
    """Without C2C_LOG_VIEW_ENABLED the route does not exist."""
    app = app_factory({"c2c.secret": _SECRET}, includes=_INCLUDES)
    app.get("/c2c/logging/level", headers=_HEADERS, status=404)


def test_requires_the_secret(app_factory):
    """The view answers 403 without the secret."""
    _app(app_factory).get("/c2c/logging/level", params={"name": "x"}, status=403)


def test_get_and_set_without_redis(app_factory):
    """Get, set and list the levels in a process without Redis."""
    app = _app(app_factory)

    before = app.get("/c2c/logging/level", params={"name": "c2c.test.a"}, headers=_HEADERS).json
    changed = app.get("/c2c/logging/level", params={"name": "c2c.test.a", "level": "debug"}, headers=_HEADERS)

    assert before == {"status": 200, "name": "c2c.test.a", "level": "NOTSET", "effective_level": "WARNING"}
    assert changed.json == {"status": 200, "name": "c2c.test.a", "level": "DEBUG", "effective_level": "DEBUG"}
    assert "no-cache" in changed.headers["Cache-Control"]
    assert logging.getLogger("c2c.test.a").level == logging.DEBUG
    listed = app.get("/c2c/logging/level", headers=_HEADERS).json
    assert listed == {"status": 200, "overrides": {"c2c.test.a": "DEBUG"}}


def test_invalid_level_is_refused(app_factory, redis_url):
    """An unknown level is a 400, and nothing is applied nor stored."""
    app = _app(app_factory, **{"c2c.redis_url": redis_url})

    app.get(
        "/c2c/logging/level", params={"name": "c2c.test.b", "level": "LOUD"}, headers=_HEADERS, status=400
    )

    assert logging.getLogger("c2c.test.b").level == logging.NOTSET
    assert redis.Redis.from_url(redis_url).keys("c2c_logging_level_*") == []


def test_set_is_stored_and_reapplied_at_startup(app_factory, redis_url):
    """A level set is stored in Redis and applied by an application built later."""
    app = _app(app_factory, **{"c2c.redis_url": redis_url})
    app.get("/c2c/logging/level", params={"name": "c2c.test.c", "level": "ERROR"}, headers=_HEADERS)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.get("c2c_logging_level_c2c.test.c") == "ERROR"
    assert app.get("/c2c/logging/level", headers=_HEADERS).json["overrides"] == {"c2c.test.c": "ERROR"}

    logging.getLogger("c2c.test.c").setLevel(logging.NOTSET)
    _app(app_factory, **{"c2c.redis_url": redis_url})

    assert logging.getLogger("c2c.test.c").level == logging.ERROR


def test_ttl_reverts_everywhere(app_factory, redis_url):
    """With ttl the override expires in Redis and the previous level comes back."""
    logging.getLogger("c2c.test.d").setLevel(logging.INFO)
    app = _app(app_factory, **{"c2c.redis_url": redis_url})

    app.get(
        "/c2c/logging/level", params={"name": "c2c.test.d", "level": "DEBUG", "ttl": "0.5"}, headers=_HEADERS
    )

    assert logging.getLogger("c2c.test.d").level == logging.DEBUG
    assert 0 < redis.Redis.from_url(redis_url).pttl("c2c_logging_level_c2c.test.d") <= 500
    time.sleep(1)
    assert logging.getLogger("c2c.test.d").level == logging.INFO
    assert redis.Redis.from_url(redis_url).get("c2c_logging_level_c2c.test.d") is None
    app.get(
        "/c2c/logging/level", params={"name": "x", "level": "INFO", "ttl": "-1"}, headers=_HEADERS, status=400
    )


def test_redis_down_still_answers_with_one_warning(app_factory, redis_factory):
    """With Redis down the level is applied locally and a single warning is logged."""
    server = redis_factory()
    app = _app(app_factory, **{"c2c.redis_url": server.url})

    with testing.capture_logs("c2cwsgiutils") as records:
        server.stop()
        for level in ("DEBUG", "INFO"):
            app.get("/c2c/logging/level", params={"name": "c2c.test.e", "level": level}, headers=_HEADERS)
        time.sleep(0.3)

    assert logging.getLogger("c2c.test.e").level == logging.INFO
    assert len([r for r in records if r.levelno == logging.WARNING]) == 1


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.server
def test_level_reaches_every_gunicorn_worker(redis_url, tmp_path):
    """A level set through one request is applied in every worker of a preloaded gunicorn."""
    pytest.importorskip("gunicorn")
    env = {"C2C_REDIS_URL": redis_url, "C2C_SECRET": _SECRET, "C2C_LOG_VIEW_ENABLED": "1"}
    with gunicorn("_redis_app:app", env, tmp_path) as url:
        deadline = time.monotonic() + 30
        pids = set()
        while len(pids) < 2:  # both workers are up
            try:
                pids.add(requests.get(url + "/whoami", timeout=2).json()["pid"])
            except requests.ConnectionError:
                time.sleep(0.1)
            assert time.monotonic() < deadline, "gunicorn did not start"
        answer = requests.get(
            url + "/c2c/logging/level",
            params={"name": "c2c.test.f", "level": "ERROR"},
            headers=_HEADERS,
            timeout=15,
        )
        assert answer.json()["level"] == "ERROR"
        seen = {}
        while len(seen) < 2 and time.monotonic() < deadline + 30:
            whoami = requests.get(url + "/whoami", params={"name": "c2c.test.f"}, timeout=5).json()
            seen[whoami["pid"]] = whoami["level"]
        assert set(seen.values()) == {"ERROR"}
        assert len(seen) == 2


@pytest.fixture
def fresh_overrides(monkeypatch):
    """The overrides applied in this process start empty and are forgotten after the test."""
    monkeypatch.setattr(logging_view, "_OVERRIDES", logging_view._Overrides())


@pytest.mark.usefixtures("fresh_overrides")
def test_stored_overrides_are_bounded(app_factory, redis_url):
    """200 names are stored; a 201st is a JSON 400 and changes nothing; a stored name still changes."""
    app = _app(app_factory, **{"c2c.redis_url": redis_url})
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    for index in range(200):
        app.get("/c2c/logging/level", params={"name": f"c2c.cap.n{index}", "level": "INFO"}, headers=_HEADERS)
    assert len(client.keys("c2c_logging_level_*")) == 200

    refused = app.get(
        "/c2c/logging/level", params={"name": "c2c.cap.extra", "level": "DEBUG"}, headers=_HEADERS, status=400
    )

    assert refused.content_type == "application/json"
    assert "Too many log level overrides" in refused.json["message"]
    assert "C2C_LOG_VIEW_MAX_OVERRIDES" in refused.json["message"]
    assert client.get("c2c_logging_level_c2c.cap.extra") is None
    assert logging.getLogger("c2c.cap.extra").level == logging.NOTSET
    assert len(client.keys("c2c_logging_level_*")) == 200
    changed = app.get(
        "/c2c/logging/level", params={"name": "c2c.cap.n7", "level": "ERROR"}, headers=_HEADERS
    ).json
    assert changed["level"] == "ERROR"
    assert client.get("c2c_logging_level_c2c.cap.n7") == "ERROR"


@pytest.mark.usefixtures("fresh_overrides")
def test_startup_applies_at_most_the_maximum(app_factory, redis_url):
    """Overrides stored beyond the maximum (by older processes) are not applied at start-up."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    for index in range(5):
        client.set(f"c2c_logging_level_c2c.start.n{index}", "ERROR")

    with testing.capture_logs("c2cwsgiutils.logging_view") as records:
        _app(app_factory, **{"c2c.redis_url": redis_url, "c2c.log_view_max_overrides": "3"})

    applied = [i for i in range(5) if logging.getLogger(f"c2c.start.n{i}").level == logging.ERROR]
    assert len(applied) == 3
    assert any("only 3 applied" in r.getMessage() for r in records)


@pytest.mark.usefixtures("fresh_overrides")
def test_without_redis_the_overrides_of_the_process_are_bounded(app_factory):
    """Without Redis the overrides applied in this process count, with the same JSON 400."""
    app = _app(app_factory, **{"c2c.log_view_max_overrides": "2"})
    for name in ("c2c.local.a", "c2c.local.b"):
        app.get("/c2c/logging/level", params={"name": name, "level": "INFO"}, headers=_HEADERS)

    refused = app.get(
        "/c2c/logging/level", params={"name": "c2c.local.c", "level": "INFO"}, headers=_HEADERS, status=400
    )

    assert refused.json == {"status": 400, "message": refused.json["message"]}
    assert "the maximum is 2" in refused.json["message"]
    assert logging.getLogger("c2c.local.c").level == logging.NOTSET
    app.get("/c2c/logging/level", params={"name": "c2c.local.a", "level": "ERROR"}, headers=_HEADERS)
    assert logging.getLogger("c2c.local.a").level == logging.ERROR
