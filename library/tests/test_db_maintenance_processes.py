"""The database maintenance mode in a real preloaded gunicorn with 2 workers, Redis and PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import requests
from _gunicorn import each_worker, gunicorn

pytestmark = [pytest.mark.server, pytest.mark.usefixtures("clean_redis_state")]
_SECRET = "a-test-secret"
_CLOSE = {"Connection": "close"}


def _rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM maintenance_rows").fetchone()
    assert row is not None
    return int(row[0])


def _post_each_worker(url: str) -> dict[int, requests.Response]:
    """POST /write until each of the 2 workers answered once (new connection per request)."""

    def post() -> dict[str, Any]:
        response = requests.post(url + "/write", headers=_CLOSE, timeout=10)
        return {"pid": response.headers["X-Worker-Pid"], "response": response}

    return {pid: answer["response"] for pid, answer in each_worker(post).items()}


def _maintenance(url: str, readonly: str) -> dict[str, object]:
    response = requests.get(
        url + "/c2c/db/maintenance",
        params={"readonly": readonly},
        headers={"X-API-Key": _SECRET, **_CLOSE},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_maintenance_switches_every_worker(postgresql, redis_url, tmp_path):
    """readonly=true sends the writes of every worker to the read-only replica; false restores them."""
    pytest.importorskip("gunicorn")
    with psycopg.connect(postgresql.url_rw, autocommit=True) as conn:
        conn.execute("CREATE TABLE maintenance_rows (id serial PRIMARY KEY, pid integer NOT NULL)")
    env = {
        "SQLALCHEMY_URL": postgresql.url_rw,
        "SQLALCHEMY_SLAVE_URL": postgresql.url_ro,
        "C2C_REDIS_URL": redis_url,
        "C2C_SECRET": _SECRET,
        "C2C_DB_MAINTENANCE_VIEW_ENABLED": "1",
    }
    expected = "cannot execute INSERT in a read-only transaction"
    with gunicorn("_maintenance_app:app", env, tmp_path, expected_error=expected) as url:
        before = _post_each_worker(url)
        assert [r.status_code for r in before.values()] == [200, 200]
        assert [r.json()["user"] for r in before.values()] == ["app_rw", "app_rw"]
        rows = _rows(postgresql.url_rw)
        assert rows >= 2

        assert _maintenance(url, "true") == {"status": 200, "readonly": True}
        during = _post_each_worker(url)
        assert set(during) == set(before)  # the same two workers
        for pid, response in during.items():
            assert 400 <= response.status_code < 600, (pid, response.text)
            assert response.headers["Content-Type"].startswith("application/json")
            assert response.json()["status"] == response.status_code
            assert response.headers["X-Db-User"] == "app_ro", pid
        assert _rows(postgresql.url_rw) == rows

        assert _maintenance(url, "false") == {"status": 200, "readonly": False}
        after = _post_each_worker(url)
        assert [r.status_code for r in after.values()] == [200, 200]
        assert [r.json()["user"] for r in after.values()] == ["app_rw", "app_rw"]
        assert _rows(postgresql.url_rw) > rows
