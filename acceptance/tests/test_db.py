"""Database: primary/replica routing, maintenance mode, request id in PostgreSQL and in the logs."""

from __future__ import annotations

import uuid
from typing import Any

from c2cwsgiutils.acceptance import utils
from c2cwsgiutils.acceptance.connection import CacheExpected, Connection
from conftest import Stack, json_lines


def test_reads_on_the_replica_writes_on_the_primary(app: Connection) -> None:
    assert app.get_json("api/db/where")["replica"] is True
    assert app.post_json("api/db/where", json={})["replica"] is False
    # force_master=["GET /api/db/primary"]: a GET routed to the primary
    assert app.get_json("api/db/primary")["replica"] is False


def test_write_then_read_back(app: Connection, app_name: str) -> None:
    value = f"{app_name}-{uuid.uuid4()}"
    row = app.put_json("api/hello", json={"value": value})
    assert row["value"] == value

    def replicated() -> None:
        values = [item["value"] for item in app.get_json("api/hello")["hello"]]
        assert value in values

    utils.retry_timeout(replicated, timeout=30)


def test_integrity_error_is_400(app: Connection) -> None:
    error = app.put_json("api/hello", json={"value": "hello world"}, expected_status=400)
    assert error["status"] == 400
    assert "stacktrace" not in error


def test_request_id_in_postgresql_logs(stack: Stack, app: Connection, app_name: str) -> None:
    write_id = f"w-{app_name}-{uuid.uuid4().hex[:12]}"
    read_id = f"r-{app_name}-{uuid.uuid4().hex[:12]}"
    app.put_json("api/hello", json={"value": write_id}, headers={"X-Request-ID": write_id})
    app.get_json("api/hello", headers={"X-Request-ID": read_id})

    def logged() -> None:
        assert f"app={write_id} " in stack.logs("db")
        assert f"app={read_id} " in stack.logs("db-replica")

    utils.retry_timeout(logged, timeout=30)


def test_request_id_in_json_logs(stack: Stack) -> None:
    app2 = stack.connection("app2")
    request_id = f"log-{uuid.uuid4()}"
    app2.get_json(
        "api/log", headers={"X-Request-ID": request_id}, cors=False, cache_expected=CacheExpected.DONT_CARE
    )

    def logged() -> None:
        lines = [line for line in json_lines(stack.logs("app2")) if line.get("request_id") == request_id]
        messages = {line["logger_name"]: line for line in lines}
        assert messages["acceptance_app.views"]["msg"] == f"Logging with the request id {request_id}"
        assert messages["acceptance_app.views"]["path"] == "/api/log"
        assert messages["gunicorn.access"]["status"] == 200

    utils.retry_timeout(logged, timeout=30)


def _where_by_pid(stack: Stack, service: str, fresh_session: Any, processes: int) -> dict[int, bool]:
    """POST /api/db/where on new connections until ``processes`` processes answered."""
    seen: dict[int, bool] = {}
    for _ in range(60):
        response = fresh_session(stack.url(service) + "api/db/where", method="POST")
        assert response.status_code == 200, response.text
        seen[response.json()["pid"]] = response.json()["replica"]
        if len(seen) >= processes:
            break
    assert len(seen) == processes, seen
    return seen


def test_maintenance_mode_in_every_worker(stack: Stack, auth: dict[str, str], fresh_session: Any) -> None:
    app2 = stack.connection("app2")
    assert app2.get_json("c2c/db/maintenance", headers=auth, cors=False)["current_readonly"] in (None, False)
    try:
        answer = app2.get_json("c2c/db/maintenance", params={"readonly": "true"}, headers=auth, cors=False)
        assert answer["readonly"] is True
        assert app2.get_json("c2c/db/maintenance", headers=auth, cors=False)["current_readonly"] is True
        # every worker of app2 writes on the replica now
        assert set(_where_by_pid(stack, "app2", fresh_session, 2).values()) == {True}
        # app has its own broadcast prefix and Redis DB: not in maintenance
        assert stack.connection("app").post_json("api/db/where", json={})["replica"] is False
    finally:
        app2.get_json("c2c/db/maintenance", params={"readonly": "false"}, headers=auth, cors=False)
    assert set(_where_by_pid(stack, "app2", fresh_session, 2).values()) == {False}
    assert app2.get_json("c2c/db/maintenance", headers=auth, cors=False)["current_readonly"] is False
