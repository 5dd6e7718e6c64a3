from __future__ import annotations

import gzip
import http.server
import json
import logging
import threading
import time
import zlib

import pytest
import webtest

from c2cwsgiutils import sentry, testing

pytest.importorskip("sentry_sdk")


def _parse_envelope(body: bytes) -> list[tuple[dict, bytes]]:
    """Split a Sentry envelope into (item header, payload) pairs."""
    _, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return items


class _SentryHandler(http.server.BaseHTTPRequestHandler):
    events: list[dict]
    paths: list[str]

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        self.paths.append(self.path)
        for header, payload in _parse_envelope(body):
            if header.get("type") == "event":
                self.events.append(json.loads(payload))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def sentry_server():
    """A Sentry-compatible server on 127.0.0.1 recording the events it receives."""
    handler = type("Handler", (_SentryHandler,), {"events": [], "paths": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://public@127.0.0.1:{httpd.server_address[1]}/42", handler
    finally:
        sentry._reset()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _flush_events(handler, count: int = 1) -> list[dict]:
    import sentry_sdk

    sentry_sdk.flush(timeout=5)
    deadline = time.monotonic() + 5
    while len(handler.events) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return handler.events


class _IgnoredError(Exception):
    pass


def _configure(config):
    def boom(request):
        raise RuntimeError("boom in a view")

    def ignored(request):
        raise _IgnoredError("not for Sentry")

    def log_excluded(request):
        logging.getLogger("noisy.library").error("excluded logger error")
        logging.getLogger("app.module").error("reported logger error")
        return {"status": 200}

    config.add_route("boom", "/boom")
    config.add_view(boom, route_name="boom")
    config.add_route("ignored", "/ignored")
    config.add_view(ignored, route_name="ignored")
    config.add_route("log", "/log")
    config.add_view(log_excluded, route_name="log", renderer="json")


@pytest.fixture
def sentry_app(sentry_server, monkeypatch):
    dsn, handler = sentry_server
    monkeypatch.setenv("SENTRY_URL", dsn)
    monkeypatch.setenv("SENTRY_CLIENT_ENVIRONMENT", "testing")
    monkeypatch.setenv("SENTRY_TAG_SERVICE", "demo-service")
    monkeypatch.setenv("SENTRY_CLIENT_IGNORE_EXCEPTIONS", "SystemExit,_IgnoredError")
    monkeypatch.setenv("SENTRY_EXCLUDES", "sentry_sdk,noisy")
    monkeypatch.setenv("GIT_HASH", "0123abcd")
    app = testing.make_test_app(
        {}, includes=("c2cwsgiutils.request_tracking", "c2cwsgiutils.sentry"), configure=_configure
    )
    return app, handler


def test_view_exception_arrives_with_tags_release_environment_and_request_id(sentry_app):
    """An exception in a view reaches the Sentry server with the tags, release, environment and request id."""
    app, handler = sentry_app
    with pytest.raises(RuntimeError):
        app.get("/boom", headers={"X-Request-ID": "req-sentry-1"})
    events = _flush_events(handler)
    assert handler.paths[0] == "/api/42/envelope/"
    (event,) = events
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["exception"]["values"][-1]["value"] == "boom in a view"
    assert event["release"] == "0123abcd"
    assert event["environment"] == "testing"
    assert event["tags"]["service"] == "demo-service"
    assert event["tags"]["request_id"] == "req-sentry-1"


def test_ignored_exceptions_and_excluded_loggers_do_not_arrive(sentry_app):
    """Ignored exception classes and records of excluded loggers are not sent; other error logs are."""
    app, handler = sentry_app
    with pytest.raises(_IgnoredError):
        app.get("/ignored")
    app.get("/log", headers={"X-Request-ID": "req-log"})
    events = _flush_events(handler)
    time.sleep(0.2)  # give a wrongly sent event the time to arrive
    messages = [e.get("logentry", {}).get("message") or e.get("message") for e in handler.events]
    assert messages == ["reported logger error"], events
    assert handler.events[0]["tags"]["request_id"] == "req-log"


def test_capture_exceptions_reports_and_reraises(sentry_server, monkeypatch):
    """capture_exceptions() sends the exception and lets it propagate."""
    dsn, handler = sentry_server
    monkeypatch.setenv("SENTRY_URL", dsn)
    sentry.includeme()
    with pytest.raises(ValueError, match="captured"), sentry.capture_exceptions():
        raise ValueError("captured")
    (event,) = _flush_events(handler)
    assert event["exception"]["values"][-1]["value"] == "captured"


def test_filter_wsgi_app_reports_errors_of_any_wsgi_app(sentry_server, monkeypatch):
    """The paste filter wraps a plain WSGI application so that its errors are reported."""
    dsn, handler = sentry_server

    def wsgi_app(environ, start_response):
        raise KeyError("plain wsgi")

    wrapped = sentry.filter_factory({}, **{"c2c.sentry.url": dsn})(wsgi_app)
    assert wrapped is not wsgi_app
    with pytest.raises(KeyError):
        webtest.TestApp(wrapped).get("/")
    (event,) = _flush_events(handler)
    assert event["exception"]["values"][-1]["type"] == "KeyError"


def test_disabled_without_url_leaves_the_app_alone():
    """Without SENTRY_URL nothing is initialised and the filter returns the application itself."""

    def wsgi_app(environ, start_response):
        return []

    assert sentry.filter_wsgi_app(wsgi_app) is wsgi_app
    sentry.includeme()
    assert not sentry.is_enabled()


def test_both_traces_sample_rates_do_not_crash(monkeypatch, caplog):
    """SENTRY_CLIENT_TRACES_SAMPLE_RATE wins over SENTRY_TRACES_SAMPLE_RATE instead of crashing."""
    environ = {
        "SENTRY_URL": "http://k@127.0.0.1:9/1",
        "SENTRY_TRACES_SAMPLE_RATE": "0.1",
        "SENTRY_CLIENT_TRACES_SAMPLE_RATE": "0.5",
        "SENTRY_CLIENT_WITH_LOCALS": "false",
        "SENTRY_CLIENT_MAX_BREADCRUMBS": "7",
        "SENTRY_CLIENT_NO_SUCH_OPTION": "x",
        "SENTRY_CLIENT_RELEASE": "latest",
        "GIT_HASH": "cafe",
    }
    from c2cwsgiutils import _settings

    conf = _settings.resolve(sentry.SentrySettings, None, environ)
    with caplog.at_level(logging.WARNING, "c2cwsgiutils.sentry"):
        options = sentry.client_options(conf, environ)
    assert options["traces_sample_rate"] == 0.5
    assert options["include_local_variables"] is False
    assert options["max_breadcrumbs"] == 7
    assert options["release"] == "cafe"
    assert options["ignore_errors"] == ["SystemExit"]
    assert "no_such_option" not in options
    assert "wins" in caplog.text
    assert "NO_SUCH_OPTION" in caplog.text


def test_init_happens_once_per_process(sentry_server, monkeypatch):
    """A second include does not re-initialise the SDK (same client)."""
    import sentry_sdk

    dsn, _ = sentry_server
    monkeypatch.setenv("SENTRY_URL", dsn)
    sentry.includeme()
    client = sentry_sdk.get_client()
    sentry.includeme()
    assert sentry_sdk.get_client() is client
    assert sentry.is_enabled()


def test_sentry_level_chooses_which_log_records_become_events(sentry_server, monkeypatch):
    """With SENTRY_LEVEL=WARNING a warning log record is sent, an info one is not."""
    dsn, handler = sentry_server
    monkeypatch.setenv("SENTRY_URL", dsn)
    monkeypatch.setenv("SENTRY_LEVEL", "warning")
    sentry.includeme()
    logging.getLogger("app.level").info("only a breadcrumb")
    logging.getLogger("app.level").warning("a warning event")
    (event,) = _flush_events(handler)
    assert event["logentry"]["message"] == "a warning event"
    assert event["level"] == "warning"


def test_invalid_sentry_level_fails_at_startup(monkeypatch):
    """An unknown SENTRY_LEVEL is a configuration error, not a crash on the first log record."""
    from pyramid.exceptions import ConfigurationError

    monkeypatch.setenv("SENTRY_URL", "http://k@127.0.0.1:9/1")
    monkeypatch.setenv("SENTRY_LEVEL", "LOUD")
    with pytest.raises(ConfigurationError, match="SENTRY_LEVEL"):
        sentry.includeme()
    assert not sentry.is_enabled()


def test_a_failing_tagging_never_fails_the_request(sentry_app, monkeypatch, caplog):
    """Tagging that raises (an SDK without the API it needs) is logged once; every request answers."""
    import sentry_sdk

    from c2cwsgiutils import _safety

    app, _ = sentry_app
    monkeypatch.setattr(_safety, "reraise_internal_errors", False)

    def set_tag(key, value):
        raise AttributeError("module 'sentry_sdk' has no attribute 'set_tag'")

    monkeypatch.setattr(sentry_sdk, "set_tag", set_tag)
    with caplog.at_level(logging.DEBUG, logger="c2cwsgiutils"):
        for _ in range(3):
            assert app.get("/log").json == {"status": 200}
    failures = [r for r in caplog.records if "tagging the Sentry events" in r.getMessage()]
    assert [r.levelname for r in failures] == ["ERROR", "DEBUG", "DEBUG"]
    assert failures[0].exc_info is not None
