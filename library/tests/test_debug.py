from __future__ import annotations

import os

import pytest

from c2cwsgiutils import debug

pytestmark = pytest.mark.usefixtures("clean_redis_state")
_SECRET = "a-test-secret"
_HEADERS = {"X-API-Key": _SECRET}


def _debug_app(app_factory, **settings):
    def configure(config):
        config.add_route("hello", "/hello", request_method="GET")
        config.add_view(lambda request: {"hello": 1}, route_name="hello", renderer="fast_json")

    return app_factory(
        {"c2c.secret": _SECRET, "c2c.debug_view_enabled": "1", **settings},
        includes=("c2cwsgiutils.pyramid", "c2cwsgiutils.debug"),
        configure=configure,
    )


@pytest.fixture
def app(app_factory):
    return _debug_app(app_factory)


def test_views_need_the_secret_except_time(app):
    """Every debug view is a 403 without the secret, except time."""
    for path in ("stacks", "memory", "memory_maps", "headers", "sleep", "error", "show_refs.dot"):
        app.get(f"/c2c/debug/{path}", status=403)
    answer = app.get("/c2c/debug/time")
    assert set(answer.json) == {"local_time", "gmt_time", "epoch", "timezone"}
    assert "no-cache" in answer.headers["Cache-Control"]


def test_stacks_are_grouped_per_thread(app):
    """The stacks view lists this process's threads with their frames."""
    stacks = app.get("/c2c/debug/stacks", headers=_HEADERS).json
    threads = [t for group in stacks for t in group["threads"]]
    assert any(f"/{os.getpid()}/MainThread(" in t for t in threads)
    assert all({"file", "line", "function"} <= set(group["frames"][0]) for group in stacks)


def test_memory_reports_this_process(app):
    """The memory view reports the collected objects and the biggest objects of a type."""
    answer = app.get(
        "/c2c/debug/memory", params={"analyze_type": "builtins.function", "limit": "5"}, headers=_HEADERS
    ).json
    assert len(answer) == 1
    assert answer[0]["pid"] == os.getpid()
    assert len(answer[0]["nb_collected"]) == 3
    assert len(answer[0]["most_common_types"]) == 5
    assert answer[0]["builtins.function"]["modules"][0]["nb_func"] > 0
    internals = app.get("/c2c/debug/memory", params={"python_internals_map": "1"}, headers=_HEADERS).json
    assert "biggest_objects" in internals[0]["builtins.dict"]


def test_memory_diff_and_maps(app):
    """memory_diff runs a sub-request; memory_maps aggregates smaps by PSS."""
    diff = app.get("/c2c/debug/memory_diff", params={"path": "/hello"}, headers=_HEADERS).json
    assert isinstance(diff, list)
    assert all(len(entry) == 3 for entry in diff)
    maps = app.get("/c2c/debug/memory_maps", headers=_HEADERS).json
    assert maps[0]["pss_kb"] >= maps[-1]["pss_kb"] > 0


def test_show_refs_by_type_and_id(app):
    """show_refs.dot gives Graphviz text, with analyze_type as with analyze_id and min_size_kb."""
    holder = {"payload": list(range(100))}
    by_type = app.get(
        "/c2c/debug/show_refs.dot", params={"analyze_type": "builtins.frozenset"}, headers=_HEADERS
    )
    by_id = app.get(
        "/c2c/debug/show_refs.dot",
        params={"analyze_id": str(id(holder)), "min_size_kb": "0.1"},
        headers=_HEADERS,
    )
    assert by_type.content_type == "text/vnd.graphviz"
    assert by_type.text.startswith("digraph")
    assert by_id.text.startswith("digraph")
    assert "payload" in by_id.text


def test_headers_masks_credentials(app):
    """The headers view echoes the request headers but masks cookies and credentials."""
    answer = app.get(
        "/c2c/debug/headers",
        headers={**_HEADERS, "Cookie": "session=abc", "Authorization": "Bearer tok", "X-Custom": "seen"},
    ).json
    assert answer["headers"]["X-Custom"] == "seen"
    assert answer["headers"]["Cookie"] == "***"
    assert answer["headers"]["Authorization"] == "***"
    assert answer["headers"]["X-Api-Key"] == "***"
    assert answer["client_info"]["path"] == "/c2c/debug/headers"
    app.get("/c2c/debug/headers", params={"status": "418"}, headers=_HEADERS, status=418)


def test_sleep_and_error(app):
    """The sleep view answers 204 and is bounded; error raises the requested status."""
    app.get("/c2c/debug/sleep", params={"time": "0.01"}, headers=_HEADERS, status=204)
    app.get("/c2c/debug/sleep", params={"time": "61"}, headers=_HEADERS, status=400)
    app.get("/c2c/debug/error", params={"status": "502"}, headers=_HEADERS, status=502)


def test_get_size_counts_referenced_objects():
    """get_size includes the objects a container references."""
    assert debug.get_size([b"x" * 10_000]) > 10_000


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("stacks", {}, 200),
        ("memory_maps", {}, 200),
        ("headers", {}, 200),
        ("sleep", {"time": "0"}, 204),
        ("error", {"status": "418"}, 418),
        ("show_refs.dot", {"analyze_type": "builtins.frozenset", "max_depth": "1"}, 200),
    ],
)
def test_every_admin_action_writes_one_audit_line(app, path, params, status):
    """Each protected debug view logs one audit line with who asked it and what."""
    from c2cwsgiutils import testing

    with testing.capture_logs("c2cwsgiutils.audit") as records:
        app.get(
            f"/c2c/debug/{path}",
            params=params,
            headers=_HEADERS,
            status=status,
            extra_environ={"REMOTE_ADDR": "192.0.2.7"},
        )
    lines = [record.getMessage() for record in records]
    assert len(lines) == 1, lines
    assert lines[0].startswith("Admin action by 192.0.2.7 (SECRET)"), lines


@pytest.mark.parametrize(
    "target",
    [
        "/c2c/debug/sleep?time=0.2",
        "//c2c//debug/sleep?time=0.2",
        "/hello/../c2c/./debug/sleep?time=0.2",
        "/c2c/debug/memory_diff?path=/hello",
        "/c2c/health_check",
        "/c2c",
    ],
)
def test_memory_diff_refuses_the_library_views(app, target):
    """memory_diff of a library view (it would run it twice) is a JSON 400, and the view never runs."""
    from c2cwsgiutils import testing

    with testing.capture_logs("c2cwsgiutils.audit") as records:
        refused = app.get("/c2c/debug/memory_diff", params={"path": target}, headers=_HEADERS, status=400)

    assert refused.content_type == "application/json"
    assert refused.json["status"] == 400
    assert "not one of the library's (/c2c)" in refused.json["message"]
    lines = [record.getMessage() for record in records]
    assert len(lines) == 1, lines  # no "sleep" line: the sub-request did not run
    assert lines[0].endswith(f"memory diff of {target}: refused: a view of the library")


def test_memory_diff_refuses_the_library_views_under_any_base_path(app_factory):
    """With C2C_BASE_PATH=/admin, /admin/... is refused; with an empty base path, the library's routes."""
    admin = _debug_app(app_factory, **{"c2c.base_path": "/admin"})
    admin.get("/admin/debug/memory_diff", params={"path": "/admin/debug/sleep"}, headers=_HEADERS, status=400)
    assert admin.get("/admin/debug/memory_diff", params={"path": "/hello"}, headers=_HEADERS).json != {}

    empty = _debug_app(app_factory, **{"c2c.base_path": ""})
    refused = empty.get(
        "/debug/memory_diff", params={"path": "/debug/sleep?time=0.2"}, headers=_HEADERS, status=400
    )
    assert "/debug/sleep" in refused.json["message"]
    empty.get("/debug/memory_diff", params={"path": "/hello"}, headers=_HEADERS, status=200)


def test_bad_parameters_are_json_400(app):
    """Every refused parameter of the debug views answers a JSON body, without the error views too."""
    refused = app.get("/c2c/debug/sleep", params={"time": "61"}, headers=_HEADERS, status=400)

    assert refused.json == {"status": 400, "message": "time must be between 0 and 60 seconds"}
