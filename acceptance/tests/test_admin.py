"""Admin views: log levels across workers and instances, SQL profiler, debug views."""

from __future__ import annotations

import uuid
from typing import Any

from c2cwsgiutils.acceptance import utils
from c2cwsgiutils.acceptance.connection import Connection
from conftest import Stack, json_lines


def _level(connection: Connection, auth: dict[str, str], name: str) -> dict[str, Any]:
    return connection.get_json("c2c/logging/level", params={"name": name}, headers=auth, cors=False)


def test_log_level_across_instances(stack: Stack, auth: dict[str, str]) -> None:
    name = f"acceptance_app.probe{uuid.uuid4().hex[:8]}"
    app, waitress, app2 = (stack.connection(service) for service in ("app", "app-waitress", "app2"))
    before = _level(app, auth, name)
    assert before == {"status": 200, "name": name, "level": "NOTSET", "effective_level": "INFO"}
    changed = app.get_json(
        "c2c/logging/level", params={"name": name, "level": "DEBUG"}, headers=auth, cors=False
    )
    assert changed["level"] == "DEBUG"
    # app-waitress shares the broadcast prefix and the Redis DB of app: changed there too
    assert _level(waitress, auth, name)["level"] == "DEBUG"
    assert app.get_json("c2c/logging/level", headers=auth, cors=False)["overrides"][name] == "DEBUG"
    # app2 has its own prefix and Redis DB: untouched
    assert _level(app2, auth, name)["level"] == "NOTSET"
    assert name not in app2.get_json("c2c/logging/level", headers=auth, cors=False)["overrides"]


def test_log_level_across_workers(stack: Stack, auth: dict[str, str], fresh_session: Any) -> None:
    name = f"acceptance_app.workers{uuid.uuid4().hex[:8]}"
    app2 = stack.connection("app2")
    app2.get_json("c2c/logging/level", params={"name": name, "level": "ERROR"}, headers=auth, cors=False)
    request_ids = []
    for index in range(20):
        request_id = f"workers-{name}-{index}"
        response = fresh_session(
            stack.url("app2") + f"c2c/logging/level?name={name}", headers={**auth, "X-Request-ID": request_id}
        )
        assert response.json()["level"] == "ERROR"
        request_ids.append(request_id)

    def both_workers_answered() -> None:
        # the JSON access log of app2 tells which worker (pid) served each request
        pids = {
            line["pid"] for line in json_lines(stack.logs("app2")) if line.get("request_id") in request_ids
        }
        assert len(pids) == 2, pids

    utils.retry_timeout(both_workers_answered, timeout=30)


def test_invalid_log_level_is_400(app: Connection, auth: dict[str, str]) -> None:
    error = app.get_json(
        "c2c/logging/level",
        params={"name": "x", "level": "LOUD"},
        headers=auth,
        expected_status=400,
        cors=False,
    )
    assert "LOUD" in error["message"]


def test_sql_profiler(stack: Stack, auth: dict[str, str]) -> None:
    app = stack.connection("app")
    app.get_json(
        "c2c/logging/level",
        params={"name": "c2cwsgiutils.sql_profiler", "level": "INFO"},
        headers=auth,
        cors=False,
    )
    try:
        assert (
            app.get_json("c2c/sql_profiler", params={"enable": "1"}, headers=auth, cors=False)["enabled"]
            is True
        )
        app.get_json("api/db/where")
        app.get_json("api/hello")

        def explained() -> None:
            lines = [line.partition("| ")[2] for line in stack.logs("app").splitlines()]
            assert "INFO  c2cwsgiutils.sql_profiler._impl SQL profiler enabled" in lines
            assert "  SELECT pg_is_in_recovery()" in lines
            # the ORM query, shortened: one line per clause, then its plan
            start = lines.index("  FROM hello")
            assert lines[start - 1] == "  SELECT ..."
            assert lines[start + 1] == "  ORDER BY hello.id"
            assert "actual time=" in lines[start + 3]

        utils.retry_timeout(explained, timeout=30)
    finally:
        assert (
            app.get_json("c2c/sql_profiler", params={"enable": "0"}, headers=auth, cors=False)["enabled"]
            is False
        )
        app.get_json(
            "c2c/logging/level",
            params={"name": "c2cwsgiutils.sql_profiler", "level": "WARNING"},
            headers=auth,
            cors=False,
        )
    assert app.get_json("c2c/sql_profiler", headers=auth, cors=False)["enabled"] is False


def test_debug_stacks(app: Connection, auth: dict[str, str]) -> None:
    stacks = app.get_json("c2c/debug/stacks", headers=auth, cors=False)
    assert stacks
    threads = [thread for group in stacks for thread in group["threads"]]
    assert any("MainThread" in thread for thread in threads)
    assert all({"file", "line", "function"} <= set(frame) for group in stacks for frame in group["frames"])


def test_debug_memory_of_every_worker(stack: Stack, auth: dict[str, str]) -> None:
    memory = stack.connection("app2").get_json(
        "c2c/debug/memory", params={"limit": "3"}, headers=auth, cors=False, timeout=120
    )
    assert len(memory) == 2  # one entry per worker
    assert len({entry["pid"] for entry in memory}) == 2
    for entry in memory:
        assert len(entry["nb_collected"]) == 3
        assert entry["most_common_types"]


def test_debug_memory_analysis(stack: Stack, auth: dict[str, str]) -> None:
    app = stack.connection("app")  # slow views (a memory analysis each): one server is enough
    growth = app.get_json("c2c/debug/memory_diff", params={"path": "/api/ping"}, headers=auth, cors=False)
    assert isinstance(growth, list)
    dot = app.get_raw(
        "c2c/debug/show_refs.dot",
        params={"analyze_type": "acceptance_app.models.Hello"},
        headers=auth,
        cors=False,
    )
    assert dot.headers["Content-Type"].startswith("text/vnd.graphviz")
    assert "digraph" in dot.text


def test_debug_local_views(app: Connection, auth: dict[str, str]) -> None:
    maps = app.get_json("c2c/debug/memory_maps", headers=auth, cors=False)
    assert {"name", "size_kb", "rss_kb", "pss_kb"} <= set(maps[0])
    assert (
        app.get("c2c/debug/sleep", params={"time": "0.1"}, headers=auth, expected_status=204, cors=False)
        is None
    )
    headers = app.get_json("c2c/debug/headers", headers={**auth, "X-Custom": "yes"}, cors=False)
    assert headers["headers"]["X-Custom"] == "yes"
    assert headers["client_info"]["path"].endswith("/c2c/debug/headers")
    error = app.get_json(
        "c2c/debug/error", params={"status": "418"}, headers=auth, expected_status=418, cors=False
    )
    assert error["status"] == 418
    now = app.get_json("c2c/debug/time", cors=False)  # no secret needed
    assert {"local_time", "gmt_time", "epoch", "timezone"} <= set(now)
