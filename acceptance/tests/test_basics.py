"""Endpoints every service answers, on gunicorn (1 and 2 workers) and waitress alike."""

from __future__ import annotations

import uuid

import requests
from c2cwsgiutils.acceptance.connection import CacheExpected, Connection


def test_health_check_levels(app: Connection) -> None:
    ping = app.get_json("c2c/health_check", params={"max_level": "0"}, cors=False)
    assert ping["successes"] == {}
    assert ping["failures"] == {}

    # The results are details for the authorised (anonymous callers see names, levels, timings).
    key = {"X-API-Key": "acceptance-secret"}
    vital = app.get_json("c2c/health_check", headers=key, cors=False)
    assert set(vital["successes"]) == {"db_engine_sqlalchemy", "db_engine_sqlalchemy_slave", "fine"}
    assert vital["successes"]["fine"]["result"] == "fine"
    assert vital["successes"]["db_engine_sqlalchemy"]["level"] == 1

    optional = app.get_json("c2c/health_check", params={"max_level": "2"}, headers=key, cors=False)
    assert {
        "alembic_app_alembic.ini_alembic",
        "redis-sentinel:26379",
        "version",
        "ping",
    } <= set(optional["successes"])
    assert optional["successes"]["alembic_app_alembic.ini_alembic"]["result"] == "4a8b3c2d1e0f"
    assert optional["failures"] == {}


def test_health_check_failure(app: Connection) -> None:
    anonymous = app.get_json("c2c/health_check", params={"max_level": "3"}, expected_status=500, cors=False)
    assert anonymous["failures"]["fails"]["message"] == "this check always fails"
    assert "result" not in anonymous["failures"]["fails"]
    assert "stacktrace" not in anonymous["failures"]["fails"]
    report = app.get_json(
        "c2c/health_check",
        params={"max_level": "3"},
        headers={"X-API-Key": "acceptance-secret"},
        expected_status=500,
        cors=False,
    )
    failure = report["failures"]["fails"]
    assert failure["message"] == "this check always fails"
    assert failure["result"] == {"reason": "on purpose"}
    assert failure["level"] == 3
    authenticated = app.get_json(
        "c2c/health_check",
        params={"max_level": "3", "checks": "fails"},
        headers={"X-API-Key": "acceptance-secret"},
        expected_status=500,
        cors=False,
    )
    assert list(authenticated["failures"]) == ["fails"]
    assert authenticated["successes"] == {}
    assert "JsonCheckException" in authenticated["failures"]["fails"]["stacktrace"]


def test_health_check_filter(app: Connection) -> None:
    report = app.get_json("c2c/health_check", params={"max_level": "3", "checks": "fine,version"}, cors=False)
    assert set(report["successes"]) == {"fine", "version"}


def test_health_check_bad_level(app: Connection) -> None:
    error = app.get_json("c2c/health_check", params={"max_level": "high"}, expected_status=400, cors=False)
    assert error["status"] == 400


def test_versions(app: Connection, auth: dict[str, str]) -> None:
    app.get_json("c2c/versions.json", expected_status=403, cors=False)  # needs the secret (6.1)
    versions = app.get_json("c2c/versions.json", headers=auth, cors=False)
    assert versions["main"]["git_hash"] == "0123456789abcdef0123456789abcdef01234567"
    assert "c2cwsgiutils" in versions["packages"]
    assert "redis" in versions["packages"]


def test_index(app: Connection, auth: dict[str, str]) -> None:
    anonymous = app.get("c2c", cors=False)
    assert "<title>c2cwsgiutils tools</title>" in anonymous
    assert "Health checks" in anonymous
    assert "DB maintenance" not in anonymous
    admin = app.get("c2c/", headers=auth, cors=False)
    for section in (
        "Health checks",
        "Versions",
        "Debug",
        "DB maintenance",
        "Logging",
        "SQL profiler",
        "Logout",
    ):
        assert section in admin, section


def test_not_found_is_json(app: Connection) -> None:
    error = app.get_json("does/not/exist", expected_status=404)
    assert error["status"] == 404
    assert error["message"] == "/does/not/exist"


def test_http_error_of_a_view(app: Connection) -> None:
    error = app.get_json("api/error", params={"code": "418"}, expected_status=418)
    assert error["status"] == 418


def test_exception_is_500_without_stacktrace(app: Connection) -> None:
    request_id = str(uuid.uuid4())
    error = app.get_json("api/error", headers={"X-Request-ID": request_id}, expected_status=500)
    assert error["status"] == 500
    assert error["request_id"] == request_id
    assert "stacktrace" not in error
    detailed = app.get_json("api/error", headers={"X-API-Key": "acceptance-secret"}, expected_status=500)
    assert "RuntimeError" in detailed["stacktrace"]


def test_bad_input_is_400(app: Connection) -> None:
    error = app.get_json("api/error", params={"code": "abc"}, expected_status=400)
    assert "integer" in error["message"]
    error = app.put_json("api/hello", data="not json", expected_status=400)
    assert "JSON" in error["message"]


def test_cors_preflight(app: Connection) -> None:
    response = app.options(
        "api/hello",
        headers={
            "Origin": "http://example.com",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "X-Foo, Content-Type",
        },
        cache_expected=CacheExpected.YES,
    )
    assert response.headers["Access-Control-Allow-Origin"] == "http://example.com"
    assert response.headers["Access-Control-Allow-Methods"] == "GET,HEAD,PUT,OPTIONS"
    # cornice keeps the requested headers in a set: any order
    assert set(response.headers["Access-Control-Allow-Headers"].split(",")) == {"X-Foo", "Content-Type"}
    assert response.headers["Access-Control-Max-Age"] == "86400"
    assert "Origin" in response.headers["Vary"]
    assert "max-age=86400" in response.headers["Cache-Control"]


def test_cors_and_cache_of_a_service(app: Connection) -> None:
    response = app.get_raw("api/ping")  # checks Access-Control-Allow-Origin: * and no-cache
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    credentials = app.get_raw("api/hello")  # cors_credentials: the origin is echoed
    assert credentials.headers["Access-Control-Allow-Origin"] == "http://example.com"
    assert credentials.headers["Access-Control-Allow-Credentials"] == "true"


def test_library_views_are_not_cached(app: Connection, auth: dict[str, str]) -> None:
    for path in ("c2c/health_check", "c2c/versions.json", "c2c/debug/time"):
        response = app.get_raw(path, headers=auth, cors=False, cache_expected=CacheExpected.NO)
        assert response.headers["Pragma"] == "no-cache"


def test_request_id_is_echoed(app: Connection) -> None:
    request_id = f"acceptance-{uuid.uuid4()}"
    pong = app.get_json("api/ping", headers={"X-Request-ID": request_id})
    assert pong["request_id"] == request_id
    other = app.get_raw("api/ping", headers={"X-Correlation-ID": "correlated"})
    assert other.headers["X-Request-ID"] == "correlated"
    generated = app.get_raw("api/ping")
    assert uuid.UUID(generated.headers["X-Request-ID"])


def test_admin_views_need_the_secret(app: Connection) -> None:
    for path in ("c2c/logging/level", "c2c/db/maintenance", "c2c/sql_profiler", "c2c/debug/stacks"):
        error = app.get_json(path, expected_status=403, cors=False)
        assert "secret" in error["message"]
    wrong = app.get_json("c2c/sql_profiler", headers={"X-API-Key": "wrong"}, expected_status=403, cors=False)
    assert wrong["status"] == 403


def test_login_cookie(app: Connection) -> None:
    session = requests.Session()
    login = session.post(app.base_url + "c2c", data={"secret": "acceptance-secret"}, timeout=30)
    assert login.status_code == 200
    assert "Logout" in login.text
    status = session.get(app.base_url + "c2c/sql_profiler", timeout=30)
    assert status.status_code == 200, status.text
    logout = session.post(app.base_url + "c2c", data={"secret": ""}, timeout=30)
    assert "Logout" not in logout.text
    assert session.get(app.base_url + "c2c/sql_profiler", timeout=30).status_code == 403


def test_broadcast_reaches_every_process(stack: object, app_name: str, app: Connection) -> None:
    del stack
    pids = app.get_json("api/pids")["pids"]
    # app and app-waitress share a Redis DB and a broadcast prefix: 1 gunicorn worker + waitress;
    # app2 has its own prefix: its 2 workers.
    assert len(pids) == 2, pids
    assert len(set(pids)) == 2
    del app_name
