from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time

import pytest
import requests
from prometheus_client import CollectorRegistry
from pyramid.httpexceptions import HTTPForbidden

from c2cwsgiutils import _metrics, stats_pyramid, testing
from c2cwsgiutils.request_tracking import _requests
from c2cwsgiutils.stats_pyramid import _sql


@pytest.fixture
def registry():
    """A fresh Prometheus registry for the library's metrics."""
    reg = CollectorRegistry()
    _metrics.use_registry(reg, reread_settings=True)
    yield reg
    _metrics.use_registry(None, reread_settings=True)
    _requests.remove_observer(stats_pyramid._observe_outgoing)
    _requests.uninstall()


def _configure(config):
    def hello(request):
        return {"hello": "world"}

    def slow(request):
        time.sleep(0.2)
        return {"slow": True}

    def forbidden(request):
        raise HTTPForbidden

    def crash(request):
        raise RuntimeError("crash")

    for name, view in (("hello", hello), ("slow", slow), ("forbidden", forbidden), ("crash", crash)):
        config.add_route(name, "/" + name)
        config.add_view(view, route_name=name, renderer="json")


@pytest.fixture
def app(registry):
    return testing.make_test_app(
        {}, includes=("c2cwsgiutils.request_tracking", "c2cwsgiutils.stats_pyramid"), configure=_configure
    )


def _count(registry, name, **labels):
    return registry.get_sample_value(f"c2cwsgiutils_{name}_count", labels) or 0


def test_route_and_render_are_timed_with_server_timing(app, registry):
    """A request is counted under its route name, with route and render durations in Server-Timing."""
    response = app.get("/hello")
    labels = {"method": "GET", "route": "hello", "status": "200", "group": "2"}
    assert _count(registry, "pyramid_routes_seconds", **labels) == 1
    assert _count(registry, "pyramid_render_seconds", **labels) == 1
    assert (
        registry.get_sample_value("c2cwsgiutils_pyramid_routes_seconds_bucket", {**labels, "le": "+Inf"}) == 1
    )
    timing = response.headers["Server-Timing"]
    assert "route;dur=" in timing
    assert 'desc="hello"' in timing
    assert "render;dur=" in timing


def test_durations_are_wall_clock(app, registry):
    """A view that sleeps is measured with the wall clock, not the CPU time."""
    app.get("/slow")
    total = registry.get_sample_value(
        "c2cwsgiutils_pyramid_routes_seconds_sum",
        {"method": "GET", "route": "slow", "status": "200", "group": "2"},
    )
    assert total >= 0.2


def test_statuses_of_not_found_http_exceptions_and_errors(app, registry):
    """Unknown routes are _not_found, HTTP exceptions keep their code and other errors count as 599."""
    app.get("/nowhere", status=404)
    app.get("/forbidden", status=403)
    with pytest.raises(RuntimeError):
        app.get("/crash")
    assert (
        _count(registry, "pyramid_routes_seconds", method="GET", route="_not_found", status="404", group="4")
        == 1
    )
    assert (
        _count(registry, "pyramid_routes_seconds", method="GET", route="forbidden", status="403", group="4")
        == 1
    )
    assert (
        _count(registry, "pyramid_routes_seconds", method="GET", route="crash", status="599", group="5") == 1
    )


def test_unknown_methods_are_bounded(app, registry):
    """Arbitrary HTTP methods do not create new label values."""
    from webob import Request

    Request.blank("/hello", method="FOOBAR").get_response(app.app)
    assert (
        _count(registry, "pyramid_routes_seconds", method="other", route="hello", status="200", group="2")
        == 1
    )


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 500 if self.path == "/fail" else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_outgoing_requests_are_timed_once_even_if_included_twice(registry, http_server):
    """Outgoing calls are counted by host, method and status; a second include does not double them."""
    for _ in range(2):
        testing.make_app({}, includes=("c2cwsgiutils.request_tracking", "c2cwsgiutils.stats_pyramid"))
    requests.get(f"http://127.0.0.1:{http_server}/ok", timeout=5)
    requests.get(f"http://127.0.0.1:{http_server}/fail", timeout=5)
    common = {"scheme": "http", "hostname": "127.0.0.1", "port": str(http_server), "method": "GET"}
    assert _count(registry, "requests_seconds", **common, status="200", group="2") == 1
    assert _count(registry, "requests_seconds", **common, status="500", group="5") == 1


def test_sql_statements_and_commits_are_timed(registry):
    """SQL statements are counted under a simplified statement; a failed one does not mislabel the next."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    stats_pyramid.init_db_spy()
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE t (id INTEGER, name TEXT)"))
        conn.execute(sqlalchemy.text("INSERT INTO t (id, name) VALUES (1, 'a')"))
        with pytest.raises(sqlalchemy.exc.OperationalError):
            conn.execute(sqlalchemy.text("SELECT nope FROM missing"))
        for value in (1, 2, 3):
            conn.execute(sqlalchemy.text("SELECT id, name FROM t WHERE id = :id"), {"id": value})
    with Session(engine) as session:
        session.execute(sqlalchemy.text("SELECT 1"))
        session.commit()
    engine_label = "sqlite:///"
    assert _count(registry, "database_seconds", what="SELECT FROM t WHERE id = ?", engine=engine_label) == 3
    assert _count(registry, "database_seconds", what="INSERT INTO t", engine=engine_label) == 1
    assert _count(registry, "database_seconds", what="SELECT FROM missing", engine=engine_label) == 0
    assert _count(registry, "database_seconds", what="commit", engine=engine_label) == 1


def test_sql_executemany_and_no_parameter_statements_are_timed(registry):
    """Several parameter sets in one call, and a statement executed without parameters, are timed once."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    stats_pyramid.init_db_spy()
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER)")
        conn.execute(sqlalchemy.text("INSERT INTO t (id) VALUES (:id)"), [{"id": 1}, {"id": 2}, {"id": 3}])
        rows = conn.execution_options(no_parameters=True).exec_driver_sql("SELECT count(*) FROM t").all()
    assert rows == [(3,)]
    assert _count(registry, "database_seconds", what="INSERT INTO t", engine="sqlite:///") == 1
    assert _count(registry, "database_seconds", what="SELECT FROM t", engine="sqlite:///") == 1


def test_sql_timing_keeps_the_applications_dialect_listeners(registry):
    """An application's ``do_execute`` listeners still run; one that executes the statement itself wins."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    stats_pyramid.init_db_spy()
    engine = sqlalchemy.create_engine("sqlite://")
    seen = []

    def watch(cursor, statement, parameters, context):
        seen.append(statement)
        return False

    def rewrite(cursor, statement, parameters, context):
        if not statement.startswith("INSERT"):
            return False
        cursor.execute("INSERT INTO t (id) VALUES (2)")  # what the application executes instead
        return True

    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER)")
    sqlalchemy.event.listen(engine, "do_execute", watch)
    sqlalchemy.event.listen(engine, "do_execute", rewrite)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("INSERT INTO t (id) VALUES (1)"))
            rows = conn.execute(sqlalchemy.text("SELECT id FROM t")).all()
    finally:
        sqlalchemy.event.remove(engine, "do_execute", watch)
        sqlalchemy.event.remove(engine, "do_execute", rewrite)
    assert rows == [(2,)]  # executed once, by the application's listener
    assert seen == ["INSERT INTO t (id) VALUES (1)", "SELECT id FROM t"]
    assert _count(registry, "database_seconds", what="INSERT INTO t", engine="sqlite:///") == 1
    assert _count(registry, "database_seconds", what="SELECT FROM t", engine="sqlite:///") == 1


_ENGINE_EVENTS_CHECK = """
import sqlalchemy
from c2cwsgiutils import stats_pyramid
stats_pyramid.init_db_spy()
engine = sqlalchemy.create_engine("sqlite://")
with engine.connect() as conn:
    conn.execute(sqlalchemy.text("SELECT 1"))
    print(conn._has_events, engine._has_events, engine.dialect._has_events)
"""


def test_sql_timing_leaves_the_engine_events_off():
    """The timing listens to the dialect only: engines keep SQLAlchemy's path without engine events.

    One engine listener makes SQLAlchemy dispatch every event of every connection (connect, begin,
    execute, rollback...), which costs more than the timing itself. Checked in a new interpreter:
    other tests (the SQL profiler) add engine listeners for good.
    """
    pytest.importorskip("sqlalchemy")
    result = subprocess.run(
        [sys.executable, "-c", _ENGINE_EVENTS_CHECK], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False", "True"]


def test_sql_labels_are_capped(registry, monkeypatch):
    """Beyond C2C_PROMETHEUS_MAX_LABEL_VALUES distinct statements, the label value is _other."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    monkeypatch.setenv("C2C_PROMETHEUS_MAX_LABEL_VALUES", "2")
    _metrics.use_registry(registry, reread_settings=True)
    stats_pyramid.init_db_spy()
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as conn:
        for table in ("a", "b", "c", "d"):
            conn.execute(sqlalchemy.text(f"CREATE TABLE {table} (id INTEGER)"))
    whats = {
        sample.labels["what"]
        for metric in registry.collect()
        if metric.name == "c2cwsgiutils_database_seconds"
        for sample in metric.samples
    }
    assert whats == {"CREATE TABLE a (id INTEGER)", "CREATE TABLE b (id INTEGER)", "_other"}


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT a, b FROM t WHERE id IN (1, 2, 3)", "SELECT FROM t WHERE id IN (?)"),
        ("INSERT INTO t (a, b) VALUES (%(a)s, %(b)s)", "INSERT INTO t"),
        ("UPDATE t SET a=1, b='x' WHERE id = 2", "UPDATE t SET WHERE id = ?"),
        ("DELETE FROM t WHERE id IN (%(id_1)s, %(id_2)s)", "DELETE FROM t WHERE id IN (?)"),
        ("select  x.a\n from x where x.b = :b", "select from x where x.b = ?"),
    ],
)
def test_statement_simplification(statement, expected):
    """Values, bind parameters and column lists are removed from SQL labels."""
    assert _sql.simplify(statement) == expected


def test_prefix_comes_from_the_environment(monkeypatch):
    """C2C_PROMETHEUS_PREFIX changes the metric names when the metrics are created."""
    monkeypatch.setenv("C2C_PROMETHEUS_PREFIX", "myapp_")
    reg = CollectorRegistry()
    _metrics.use_registry(reg, reread_settings=True)
    try:
        app = testing.make_test_app({}, includes=("c2cwsgiutils.stats_pyramid",), configure=_configure)
        app.get("/hello")
        assert (
            reg.get_sample_value(
                "myapp_pyramid_routes_seconds_count",
                {"method": "GET", "route": "hello", "status": "200", "group": "2"},
            )
            == 1
        )
    finally:
        _metrics.use_registry(None, reread_settings=True)
        _requests.remove_observer(stats_pyramid._observe_outgoing)


def test_a_failing_timing_never_fails_the_request(app, registry, monkeypatch):
    """In production a broken metric is logged and the response goes out, without Server-Timing."""
    from c2cwsgiutils import _safety

    def broken(self, histogram, labels):
        raise RuntimeError("no metrics today")

    monkeypatch.setattr(_metrics.Metrics, "series", broken)
    monkeypatch.setattr(_safety, "reraise_internal_errors", False)
    with testing.capture_logs("c2cwsgiutils") as records:
        response = app.get("/hello")
    assert response.json == {"hello": "world"}
    assert "Server-Timing" not in response.headers
    assert "X-Request-ID" in response.headers  # the other tweens went on
    (record,) = [r for r in records if "timing a request" in r.getMessage()]
    assert record.getMessage().startswith("c2cwsgiutils: timing a request failed; the request continues")
    assert str(record.exc_info[1]) == "no metrics today"


def test_a_failing_timing_fails_the_test_suite(app, registry, monkeypatch):
    """Under the test suite (reraise_internal_errors, set by conftest) the same error is raised."""

    def broken(self, histogram, labels):
        raise RuntimeError("no metrics today")

    monkeypatch.setattr(_metrics.Metrics, "series", broken)
    with pytest.raises(RuntimeError, match="no metrics today"):
        app.get("/hello")
