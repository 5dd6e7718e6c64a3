from __future__ import annotations

import http.server
import threading
import time

import pytest
import requests
from _report_server import SECRET, serve

from c2cwsgiutils.health_check import HealthCheck, JsonCheckException

_SECRET = "a-health-check-secret"
_AUTH = {"X-API-Key": _SECRET}


def _not_happy(request):
    raise RuntimeError("I'm not happy")


def _configure(*checks, **kwargs):
    def configure(config):
        health_check = HealthCheck(config)
        for check in checks:
            check(health_check)

    return configure


@pytest.fixture
def health_app(app_factory):
    """Build an app with the given health checks."""

    def build(*checks, settings=None):
        settings = {"c2c.secret": _SECRET, **(settings or {})}
        return app_factory(settings, includes=("c2cwsgiutils.pyramid",), configure=_configure(*checks))

    return build


def test_ping_runs_no_check(health_app):
    """``max_level=0`` is a ping: 200 with empty successes and failures."""
    app = health_app(lambda hc: hc.add_custom_check("bad", _not_happy, 1))
    response = app.get("/c2c/health_check", params={"max_level": "0"})
    assert response.json == {"successes": {}, "failures": {}}
    assert "no-cache" in response.headers["Cache-Control"]


def test_report_shape_levels_and_failure_status(health_app):
    """Checks up to max_level run; any failure gives HTTP 500 (no status key) with the message and level."""
    app = health_app(
        lambda hc: hc.add_custom_check("happy", lambda request: "happy", 1),
        lambda hc: hc.add_custom_check("custom", _not_happy, 2),
        lambda hc: hc.add_custom_check("deep", _not_happy, 3),
    )
    ok = app.get("/c2c/health_check", headers=_AUTH)
    assert set(ok.json) == {"successes", "failures"}
    assert ok.json["successes"]["happy"]["result"] == "happy"
    assert ok.json["successes"]["happy"]["level"] == 1
    assert ok.json["failures"] == {}

    app.reset()  # forget the login cookie
    bad = app.get("/c2c/health_check", params={"max_level": "2"}, status=500)
    assert set(bad.json) == {"successes", "failures"}
    assert bad.json["failures"]["custom"]["message"] == "I'm not happy"
    assert bad.json["failures"]["custom"]["level"] == 2
    assert "stacktrace" not in bad.json["failures"]["custom"]
    assert "deep" not in bad.json["failures"]


def test_checks_filter(health_app):
    """``checks`` restricts the run to the named checks."""
    app = health_app(
        lambda hc: hc.add_custom_check("a", lambda request: 1),
        lambda hc: hc.add_custom_check("b", _not_happy),
    )
    response = app.get("/c2c/health_check", params={"checks": "a"})
    assert set(response.json["successes"]) == {"a"}
    assert response.json["failures"] == {}


def test_json_check_exception_result(health_app):
    """A JsonCheckException reports its payload as the failure's result."""

    def check(request):
        raise JsonCheckException("bad", {"count": 3})

    app = health_app(lambda hc: hc.add_custom_check("json", check))
    response = app.get("/c2c/health_check", headers=_AUTH, status=500)
    assert response.json["failures"]["json"]["result"] == {"count": 3}


def test_bad_max_level_is_400(health_app):
    """A non-integer max_level is a client error, not a 500."""
    app = health_app(settings={"c2c.enable_exception_handling": "1"})
    response = app.get("/c2c/health_check", params={"max_level": "x"}, status=400)
    assert "max_level" in response.json["message"]


def test_hanging_check_times_out(health_app, monkeypatch):
    """A hanging check fails with 'timeout' within the configured bound, others still pass."""
    monkeypatch.setenv("C2C_HEALTH_CHECK_TIMEOUT", "0.3")
    release = threading.Event()
    app = health_app(
        lambda hc: hc.add_custom_check("hang", lambda request: release.wait(5)),
        lambda hc: hc.add_custom_check("fine", lambda request: "ok"),
    )
    start = time.monotonic()
    response = app.get("/c2c/health_check", headers=_AUTH, status=500)
    release.set()
    assert time.monotonic() - start < 3
    assert "timeout" in response.json["failures"]["hang"]["message"]
    assert response.json["successes"]["fine"]["result"] == "ok"


def test_stacktrace_only_in_development(health_app, monkeypatch):
    """Stack traces are shown in development mode only (or when authenticated)."""
    monkeypatch.setenv("DEVELOPMENT", "1")
    app = health_app(lambda hc: hc.add_custom_check("custom", _not_happy))
    response = app.get("/c2c/health_check", status=500)
    assert "RuntimeError" in response.json["failures"]["custom"]["stacktrace"]


def test_health_json_format(health_app):
    """``Accept: application/health+json`` gives the IETF draft format."""
    app = health_app(
        lambda hc: hc.add_custom_check("a", lambda request: 1),
        lambda hc: hc.add_custom_check("b", _not_happy),
    )
    response = app.get("/c2c/health_check", headers={"Accept": "application/health+json"}, status=500)
    assert response.content_type == "application/health+json"
    assert response.json["status"] == "fail"
    assert response.json["checks"]["a"][0]["status"] == "pass"
    assert response.json["checks"]["b"][0]["output"] == "I'm not happy"


def test_duplicate_name_refused(health_app):
    """Two checks with the same name are a configuration error."""
    with pytest.raises(ValueError, match="already registered"):
        health_app(
            lambda hc: hc.add_custom_check("a", lambda request: 1),
            lambda hc: hc.add_custom_check("a", lambda request: 1),
        )


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []  # noqa: RUF012

    def do_GET(self):
        self.seen.append(dict(self.headers))
        self.send_response(200 if self.path.startswith("/ok") else 503)
        self.end_headers()
        self.wfile.write(b"fine")

    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.fixture
def http_server():
    """Serve a tiny HTTP server on 127.0.0.1."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_check(health_app, http_server):
    """URL checks GET the URL with the request id and fail on a non-2xx answer."""
    app = health_app(
        lambda hc: hc.add_url_check(http_server + "/ok", name="ok", check_cb=lambda req, resp: resp.text),
        lambda hc: hc.add_url_check(http_server + "/down", name="down"),
    )
    response = app.get("/c2c/health_check", headers={"X-Request-ID": "probe-1", **_AUTH}, status=500)
    assert response.json["successes"]["ok"]["result"] == "fine"
    assert "503" in response.json["failures"]["down"]["message"]
    assert any(headers.get("X-Request-ID") == "probe-1" for headers in _Handler.seen)


def test_url_check_failure_hides_the_url_from_anonymous_callers(health_app, http_server):
    """Anonymous callers read the status of a failing URL check, never its URL (a query may hold a token)."""
    url = http_server + "/down?token=s3cr3t-token"
    app = health_app(lambda hc: hc.add_url_check(url, name="down"))
    anonymous = app.get("/c2c/health_check", status=500)
    assert anonymous.json["failures"]["down"]["message"] == "HTTP status 503"
    assert "s3cr3t-token" not in anonymous.text
    authorised = app.get("/c2c/health_check", headers=_AUTH, status=500)
    assert "s3cr3t-token" in authorised.json["failures"]["down"]["message"]


def test_anonymous_callers_get_no_result_and_the_secret_shows_it(health_app):
    """Without the secret a check's result and a failure's payload are left out; messages stay."""
    app = health_app(
        lambda hc: hc.add_custom_check("inner", lambda request: {"dsn": "postgresql://u:pw@db/x"}),
        lambda hc: hc.add_custom_check("payload", lambda request: _raise_json(), 1),
    )
    anonymous = app.get("/c2c/health_check", status=500)
    assert set(anonymous.json["successes"]["inner"]) == {"level", "timing"}
    assert set(anonymous.json["failures"]["payload"]) == {"message", "level", "timing"}
    assert anonymous.json["failures"]["payload"]["message"] == "bad payload"
    assert "pw@db" not in anonymous.text
    health = app.get("/c2c/health_check", headers={"Accept": "application/health+json"}, status=500)
    assert health.json["checks"]["inner"][0]["observedValue"] is None
    assert "pw@db" not in health.text

    authorised = app.get("/c2c/health_check", headers=_AUTH, status=500)
    assert authorised.json["successes"]["inner"]["result"] == {"dsn": "postgresql://u:pw@db/x"}
    assert authorised.json["failures"]["payload"]["result"] == {"count": 3}
    assert "stacktrace" in authorised.json["failures"]["payload"]


def test_public_details_setting_restores_the_results_for_everyone(health_app, monkeypatch):
    """``C2C_HEALTH_CHECK_PUBLIC_DETAILS=true`` shows results to anonymous callers, stack traces still not."""
    monkeypatch.setenv("C2C_HEALTH_CHECK_PUBLIC_DETAILS", "true")
    app = health_app(
        lambda hc: hc.add_custom_check("inner", lambda request: "details"),
        lambda hc: hc.add_custom_check("payload", lambda request: _raise_json(), 1),
    )
    report = app.get("/c2c/health_check", status=500).json
    assert report["successes"]["inner"]["result"] == "details"
    assert report["failures"]["payload"]["result"] == {"count": 3}
    assert "stacktrace" not in report["failures"]["payload"]


def _raise_json():
    raise JsonCheckException("bad payload", {"count": 3})


@pytest.fixture(scope="module")
def report_server(tmp_path_factory):
    """``_report_app`` on a real gunicorn: checks "fine", "silent" (level 1), "fails" (2), "version" (3)."""
    pytest.importorskip("gunicorn")
    with serve(tmp_path_factory.mktemp("report")) as url:
        yield url


def _get(url, headers=None, **params):
    return requests.get(url + "/c2c/health_check", params=params, headers=headers, timeout=30)


@pytest.mark.server
def test_legacy_report_has_exactly_the_reference_keys(report_server):
    """Through gunicorn, the plain report has only ``successes`` and ``failures``; HTTP gives 200 or 500."""
    ok = _get(report_server)
    assert ok.status_code == 200
    assert ok.headers["Content-Type"] == "application/json"
    report = ok.json()
    assert set(report) == {"successes", "failures"}
    assert report["failures"] == {}
    assert set(report["successes"]) == {"fine", "silent"}
    assert set(report["successes"]["fine"]) == {"level", "timing"}  # results need the secret
    assert set(report["successes"]["silent"]) == {"level", "timing"}

    failed = _get(report_server, max_level="3")
    assert failed.status_code == 500
    report = failed.json()
    assert set(report) == {"successes", "failures"}
    assert set(report["successes"]) == {"fine", "silent", "version"}
    assert report["successes"]["version"]["result"] == {"version": "0123abc"}  # public, as releaseId
    assert report["failures"]["fails"] == {
        "message": "failing on purpose",
        "level": 2,
        "timing": report["failures"]["fails"]["timing"],
    }

    detailed = _get(report_server, headers={"X-API-Key": SECRET}, max_level="2").json()
    assert set(detailed) == {"successes", "failures"}
    assert detailed["successes"]["fine"]["result"] == "fine"
    assert set(detailed["failures"]["fails"]) == {"message", "result", "level", "timing", "stacktrace"}
    assert detailed["failures"]["fails"]["result"] == {"reason": "test"}


@pytest.mark.server
def test_ping_is_two_empty_objects(report_server):
    """Through gunicorn, ``max_level=0`` answers 200 with exactly ``{"successes": {}, "failures": {}}``."""
    ping = _get(report_server, max_level="0")
    assert ping.status_code == 200
    assert ping.json() == {"successes": {}, "failures": {}}


@pytest.mark.server
def test_health_json_keeps_its_status(report_server):
    """Through gunicorn, ``application/health+json`` still has its ``status``, checks and release id."""
    failed = _get(report_server, headers={"Accept": "application/health+json"}, max_level="2")
    assert failed.status_code == 500
    assert failed.headers["Content-Type"] == "application/health+json"
    body = failed.json()
    assert set(body) == {"status", "checks", "releaseId"}
    assert body["status"] == "fail"
    assert body["releaseId"] == "0123abc"
    assert body["checks"]["fails"] == [
        {"status": "fail", "output": "failing on purpose", "time": body["checks"]["fails"][0]["time"]}
    ]
    assert body["checks"]["fine"][0]["status"] == "pass"
    passed = _get(report_server, headers={"Accept": "application/health+json"})
    assert passed.status_code == 200
    assert passed.json()["status"] == "pass"
