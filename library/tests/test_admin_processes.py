"""The administration views in a real preloaded gunicorn with 2 workers and a real Redis."""

from __future__ import annotations

import time

import pytest
import requests
from _gunicorn import each_worker, gunicorn

pytestmark = [pytest.mark.server, pytest.mark.usefixtures("clean_redis_state")]
_SECRET = "a-test-secret"
_HEADERS = {"X-API-Key": _SECRET, "Connection": "close"}
_RECONNECT_TIMEOUT = 15.0


def _set_level(url: str, name: str, level: str) -> requests.Response:
    return requests.get(
        url + "/c2c/logging/level", params={"name": name, "level": level}, headers=_HEADERS, timeout=15
    )


def _levels(url: str, name: str, timeout: float = 30) -> dict[int, str]:
    """The level of the logger ``name`` in each worker."""
    answers = each_worker(
        lambda: requests.get(
            url + "/whoami", params={"name": name}, headers={"Connection": "close"}, timeout=5
        ).json(),
        timeout=timeout,
    )
    return {pid: answer["level"] for pid, answer in answers.items()}


def test_levels_survive_a_redis_restart(redis_factory, tmp_path):
    """After Redis is restarted, a level set through one worker reaches every worker again."""
    pytest.importorskip("gunicorn")
    server = redis_factory()
    env = {"C2C_REDIS_URL": server.url, "C2C_SECRET": _SECRET, "C2C_LOG_VIEW_ENABLED": "1"}
    with gunicorn("_redis_app:app", env, tmp_path) as url:
        assert len(_levels(url, "root")) == 2  # both workers are up
        assert _set_level(url, "c2c.test.before", "ERROR").json()["level"] == "ERROR"
        assert set(_levels(url, "c2c.test.before").values()) == {"ERROR"}

        server.stop()
        during = [_set_level(url, "c2c.test.during", "DEBUG") for _ in range(4)]
        assert [answer.status_code for answer in during] == [200] * 4
        assert {answer.json()["level"] for answer in during} == {"DEBUG"}
        assert len(_levels(url, "c2c.test.during", timeout=10)) == 2  # every worker still answers

        server.start()
        deadline = time.monotonic() + _RECONNECT_TIMEOUT
        attempt = 0
        while True:
            attempt += 1
            name = f"c2c.test.after{attempt}"  # a fresh logger: only the broadcast can set it elsewhere
            answer = _set_level(url, name, "CRITICAL")
            assert answer.status_code == 200
            levels = _levels(url, name)
            if set(levels.values()) == {"CRITICAL"}:
                break
            assert time.monotonic() < deadline, f"the broadcast did not reach every worker: {levels}"
            time.sleep(0.5)
        assert len(levels) == 2
