from __future__ import annotations

import http.server
import logging
import re
import threading
import time
import types
import uuid

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from c2cwsgiutils import _safety, request_tracking, testing
from c2cwsgiutils.request_tracking import _requests, _traceparent

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])")
_INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def _unpatch_requests():
    """Each test starts and ends with the original ``requests``."""
    _requests.uninstall()
    yield
    _requests.uninstall()


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, str]]

    def do_GET(self):
        self.received.append(dict(self.headers.items()))
        if self.path.startswith("/slow"):
            time.sleep(0.5)
        body = b"ok"
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A real HTTP server on 127.0.0.1 that records the headers it receives."""
    handler = type("Handler", (_Recorder,), {"received": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.received
    finally:
        httpd.shutdown()
        httpd.server_close()


def _call_view(request):
    kwargs = {}
    if "timeout" in request.params:
        kwargs["timeout"] = float(request.params["timeout"])
    headers = {}
    if "own_id" in request.params:
        headers = {"X-Request-ID": request.params["own_id"], "traceparent": _INCOMING}
    try:
        response = requests.get(request.params["url"], headers=headers, **kwargs)
    except requests.exceptions.Timeout:
        return {"result": "timeout"}
    return {"result": response.text}


def _session_call_view(request):
    try:
        response = request_tracking.session().get(request.params["url"])
    except requests.exceptions.Timeout:
        return {"result": "timeout"}
    return {"result": response.text}


def _echo_view(request):
    return {"id": request.c2c_request_id}


def _configure(config):
    config.add_route("call", "/call")
    config.add_view(_call_view, route_name="call", renderer="json")
    config.add_route("session_call", "/session_call")
    config.add_view(_session_call_view, route_name="session_call", renderer="json")
    config.add_route("echo", "/echo")
    config.add_view(_echo_view, route_name="echo", renderer="json")


@pytest.fixture
def tracked(app_factory):
    """Build a Pyramid app with request tracking and the test views: ``tracked(settings)``."""

    def build(settings=None):
        return app_factory(settings or {}, includes=("c2cwsgiutils.request_tracking",), configure=_configure)

    return build


# --- request id --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["X-Request-ID", "X-Correlation-ID", "Request-ID", "X-Varnish", "X-Amzn-Trace-Id"]
)
def test_request_id_from_each_known_header(tracked, header):
    """Each header of the spec's list gives the request id, echoed as X-Request-ID."""
    response = tracked().get("/echo", headers={header: "42 is the answer"})
    assert response.json == {"id": "42 is the answer"}
    assert response.headers["X-Request-ID"] == "42 is the answer"


def test_request_id_headers_order(tracked):
    """The first header of the list wins over the later ones."""
    app = tracked()
    headers = {"X-Amzn-Trace-Id": "e", "X-Varnish": "d", "Request-ID": "c", "X-Correlation-ID": "b"}
    assert app.get("/echo", headers=headers).json["id"] == "b"
    assert app.get("/echo", headers={**headers, "X-Request-ID": "a"}).json["id"] == "a"


def test_custom_header_first_and_echoed(tracked, monkeypatch):
    """The configured header is searched first and names the response header."""
    app = tracked({"c2c.request_id_header": "X-My-Id"})
    response = app.get("/echo", headers={"X-My-Id": "mine", "X-Request-ID": "other"})
    assert response.json["id"] == "mine"
    assert response.headers["X-My-Id"] == "mine"
    assert "X-Request-ID" not in response.headers
    assert app.get("/echo", headers={"X-Request-ID": "other"}).json["id"] == "other"

    monkeypatch.setenv("C2C_REQUEST_ID_HEADER", "X-Env-Id")
    assert tracked().get("/echo", headers={"X-Env-Id": "env"}).headers["X-Env-Id"] == "env"


def test_new_uuid_when_no_header(tracked):
    """Without an id header each request gets a new UUID, echoed on the response."""
    app = tracked()
    first, second = app.get("/echo"), app.get("/echo")
    assert str(uuid.UUID(first.json["id"])) == first.json["id"]
    assert first.headers["X-Request-ID"] == first.json["id"]
    assert first.json["id"] != second.json["id"]


@pytest.mark.parametrize(
    "value",
    [
        "order 1234 from checkout",
        "Root=1-67891233-abcdef;Parent=53995c3f;Sampled=1",
        "~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
        "x" * 200,
    ],
    ids=["spaces", "amazon", "punctuation", "200-characters"],
)
def test_printable_request_id_is_kept(tracked, value):
    """Printable ASCII up to 200 characters, spaces included, is kept as sent, without any log."""
    with testing.capture_logs("c2cwsgiutils.request_tracking") as records:
        response = tracked().get("/echo", headers={"X-Request-ID": value})

    assert response.json == {"id": value}
    assert response.headers["X-Request-ID"] == value
    assert records == []


def test_spaces_and_tabs_around_the_request_id_are_dropped(tracked):
    """Spaces and tabs around a header value are not part of it; a blank header counts as absent."""
    app = tracked()
    assert (
        app.get("/echo", extra_environ={"HTTP_X_REQUEST_ID": " \t order 1234 \t"}).json["id"] == "order 1234"
    )
    blank = app.get("/echo", extra_environ={"HTTP_X_REQUEST_ID": " \t ", "HTTP_REQUEST_ID": "next"})
    assert blank.json["id"] == "next"


@pytest.mark.parametrize(
    ("value", "shown", "reason"),
    [
        ("a\r\nb", r"'a\r\nb'", "not printable ASCII"),
        ("a\x00b", r"'a\x00b'", "not printable ASCII"),
        ("\x1b[31mred", r"'\x1b[31mred'", "not printable ASCII"),
        ("a\x7fb", r"'a\x7fb'", "not printable ASCII"),
        ("a\x9bb", r"'a\x9bb'", "not printable ASCII"),
        ("caf\xe9", r"'caf\xe9'", "not printable ASCII"),
        ("x" * 201, "'" + "x" * 64 + "'... (201 characters)", "longer than 200 characters"),
        ("\n" * 100_000, "'" + r"\n" * 64 + "'... (100000 characters)", "longer than 200 characters"),
    ],
    ids=["crlf", "nul", "escape", "del", "c1", "latin-1", "201-characters", "huge"],
)
def test_invalid_request_id_is_replaced_and_logged(tracked, value, shown, reason):
    """Control or non-ASCII characters, or more than 200, give a new UUID; one WARNING, escaped."""
    with testing.capture_logs("c2cwsgiutils.request_tracking") as records:
        response = tracked().get(
            "/echo", extra_environ={"HTTP_X_REQUEST_ID": value, "HTTP_X_CORRELATION_ID": "later-header"}
        )

    new_id = response.json["id"]
    assert str(uuid.UUID(new_id)) == new_id
    assert response.headers["X-Request-ID"] == new_id
    assert [r.levelno for r in records] == [logging.WARNING]
    message = records[0].getMessage()
    assert message.startswith(f"The request id of the X-Request-ID header is {reason}")
    assert message.endswith(f"; replaced by {new_id}: {shown}")
    assert message.isascii()
    assert message.isprintable()


# --- traceparent -------------------------------------------------------------------------------


def test_valid_traceparent_continues_the_trace(tracked):
    """A valid traceparent keeps its trace id and flags; the response has a new span id."""
    response = tracked().get("/echo", headers={"traceparent": _INCOMING})
    trace_id, span_id, flags = _TRACEPARENT.fullmatch(response.headers["traceparent"]).groups()
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span_id != "00f067aa0ba902b7"
    assert flags == "01"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        _INCOMING + "-extra",
        None,
    ],
)
def test_invalid_traceparent_starts_a_new_trace(tracked, header):
    """An absent or invalid traceparent gives a new trace id, never an error."""
    headers = {"traceparent": header} if header else {}
    response = tracked().get("/echo", headers=headers)
    trace_id, _, flags = _TRACEPARENT.fullmatch(response.headers["traceparent"]).groups()
    assert trace_id not in {"4bf92f3577b34da6a3ce929d0e0e4736", "0" * 32}
    assert flags == "00"


def test_future_traceparent_version_is_accepted(tracked):
    """A higher version with extra fields is read for its first four fields."""
    header = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future"
    response = tracked().get("/echo", headers={"traceparent": header})
    assert response.headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert response.headers["traceparent"].endswith("-01")


# --- outgoing requests -------------------------------------------------------------------------


def test_outgoing_call_gets_request_id_and_traceparent(tracked, server):
    """A call made in a view carries the request id and a child traceparent of the same trace."""
    url, received = server
    response = tracked().get(
        "/call",
        params={"url": url, "timeout": "5"},
        headers={"X-Request-ID": "abc-123", "traceparent": _INCOMING},
    )
    assert response.json == {"result": "ok"}
    assert received[0]["X-Request-ID"] == "abc-123"
    trace_id, span_id, flags = _TRACEPARENT.fullmatch(received[0]["traceparent"]).groups()
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert flags == "01"
    _, request_span, _ = _TRACEPARENT.fullmatch(response.headers["traceparent"]).groups()
    assert span_id not in {request_span, "00f067aa0ba902b7"}


def test_outgoing_call_gets_request_id_with_spaces(tracked, server):
    """A kept id with spaces goes as is into the headers of the outgoing calls."""
    url, received = server
    response = tracked().get(
        "/call", params={"url": url, "timeout": "5"}, headers={"X-Request-ID": "order 1234 from checkout"}
    )
    assert response.json == {"result": "ok"}
    assert received[0]["X-Request-ID"] == "order 1234 from checkout"


def test_outgoing_call_uses_custom_header_and_keeps_caller_values(tracked, server):
    """The custom header name is used, and headers the caller set are not replaced."""
    url, received = server
    app = tracked({"c2c.request_id_header": "X-My-Id"})
    app.get("/call", params={"url": url, "timeout": "5"}, headers={"X-My-Id": "mine"})
    assert received[0]["X-My-Id"] == "mine"
    assert "X-Request-ID" not in received[0]

    tracked().get("/call", params={"url": url, "timeout": "5", "own_id": "caller"})
    assert received[1]["X-Request-ID"] == "caller"
    assert received[1]["traceparent"] == _INCOMING


def test_default_timeout_applies_to_calls_without_timeout(tracked, server):
    """``c2c.requests_default_timeout`` bounds calls made without a timeout."""
    url, _ = server
    app = tracked({"c2c.requests_default_timeout": "0.1"})
    assert app.get("/call", params={"url": url + "/slow"}).json == {"result": "timeout"}
    # An explicit timeout is kept.
    assert app.get("/call", params={"url": url + "/slow", "timeout": "5"}).json == {"result": "ok"}


def test_warning_for_calls_without_timeout(tracked, server):
    """Without a default, a call without timeout logs a warning naming the method and URL."""
    url, _ = server
    with testing.capture_logs("c2cwsgiutils.request_tracking") as records:
        result = tracked().get("/call", params={"url": url.replace("//", "//user:pw@") + "/x?secret=s3"})
    assert result.json == {"result": "ok"}
    messages = [r.getMessage() for r in records if r.levelname == "WARNING"]
    assert messages == [f"Doing a GET request without timeout to {url}/x?secret=***"]


def test_requests_outside_a_request_work_and_get_no_header(tracked, server):
    """Outside a request nothing is added, and the process default timeout applies."""
    url, received = server
    tracked({"c2c.requests_default_timeout": "0.1"})
    assert requests.get(url, timeout=5).text == "ok"
    assert "X-Request-ID" not in received[0]
    assert "traceparent" not in received[0]
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(url + "/slow")


def test_positional_timeout_is_seen(tracked, server):
    """A timeout passed positionally to the adapter counts as given."""
    url, _ = server
    tracked()
    session = requests.Session()
    prepared = session.prepare_request(requests.Request("GET", url))
    with testing.capture_logs("c2cwsgiutils.request_tracking") as records:
        response = session.get_adapter(url).send(prepared, False, 5)
    assert response.status_code == 200
    assert records == []


def test_patch_is_installed_once(tracked):
    """Including several times wraps ``HTTPAdapter.send`` once; uninstalling restores it."""
    original = HTTPAdapter.send
    tracked()
    request_tracking.includeme()
    tracked()
    assert HTTPAdapter.send.__wrapped__ is original
    _requests.uninstall()
    assert HTTPAdapter.send is original


def test_tracking_adapter_tracks_a_session_without_the_wrapper(tracked, server):
    """With ``C2C_TRACK_REQUESTS=false`` requests is not wrapped; a TrackingAdapter session is tracked."""
    url, received = server
    original = HTTPAdapter.send
    seen = []

    def observe(request, response, seconds):
        seen.append(request.url)

    app = tracked({"c2c.track_requests": "false", "c2c.requests_default_timeout": "0.1"})
    request_tracking.add_requests_observer(observe)
    try:
        assert HTTPAdapter.send is original
        app.get("/call", params={"url": url, "timeout": "5"}, headers={"X-Request-ID": "plain"})
        assert "X-Request-ID" not in received[0]
        app.get("/session_call", params={"url": url}, headers={"X-Request-ID": "tracked"})
        assert received[1]["X-Request-ID"] == "tracked"
        assert _TRACEPARENT.fullmatch(received[1]["traceparent"])
        assert app.get("/session_call", params={"url": url + "/slow"}).json == {"result": "timeout"}
        assert seen == [url + "/", url + "/slow"]
    finally:
        request_tracking.remove_requests_observer(observe)


def test_tracking_adapter_with_the_wrapper_tracks_once(tracked, server):
    """A TrackingAdapter session under the process-wide wrapper is observed once per call."""
    url, received = server
    seen = []

    def observe(request, response, seconds):
        seen.append(request.url)

    app = tracked()
    request_tracking.add_requests_observer(observe)
    try:
        app.get("/session_call", params={"url": url}, headers={"X-Request-ID": "once"})
    finally:
        request_tracking.remove_requests_observer(observe)
    assert received[0]["X-Request-ID"] == "once"
    assert seen == [url + "/"]


def test_an_unknown_send_signature_is_not_wrapped(caplog):
    """A requests release whose HTTPAdapter.send differs gets no wrapper and one warning."""

    class Adapter:
        def send(self, request, **kwargs):
            return request, kwargs

    original = Adapter.send
    with testing.capture_logs("c2cwsgiutils.request_tracking") as records:
        _requests._patch(types.SimpleNamespace(HTTPAdapter=Adapter))
    assert Adapter.send is original
    assert not _requests.is_installed()
    assert [r.levelname for r in records] == ["WARNING"]
    assert "unknown signature" in records[0].getMessage()


def test_include_without_config_uses_environment(monkeypatch, server):
    """``includeme()`` without a configurator installs the integration with env settings."""
    url, _ = server
    monkeypatch.setenv("C2C_REQUESTS_DEFAULT_TIMEOUT", "0.1")
    request_tracking.includeme()
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(url + "/slow")


def test_observers_see_each_call(tracked, server):
    """Observers get the prepared request, the response (None on error) and a duration."""
    url, _ = server
    tracked()
    seen = []

    def observer(request, response, seconds):
        seen.append((request.url, None if response is None else response.status_code, seconds))

    request_tracking.add_requests_observer(observer)
    requests.get(url + "/a", timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get("http://127.0.0.1:1/", timeout=5)
    request_tracking.remove_requests_observer(observer)
    requests.get(url + "/b", timeout=5)
    assert [(u, s) for u, s, _ in seen] == [(url + "/a", 200), ("http://127.0.0.1:1/", None)]
    assert all(seconds >= 0 for _, _, seconds in seen)


def test_failing_observer_does_not_break_the_call(tracked, server, monkeypatch):
    """In production an observer that raises is logged and the caller gets its response."""
    monkeypatch.setattr(_safety, "reraise_internal_errors", False)
    url, _ = server
    tracked()

    def broken(request, response, seconds):
        raise RuntimeError("boom")

    request_tracking.add_requests_observer(broken)
    with testing.capture_logs("c2cwsgiutils") as records:
        assert requests.get(url, timeout=5).text == "ok"
    assert any("observing an outgoing request" in r.getMessage() for r in records)


# --- tween order -------------------------------------------------------------------------------


def test_tween_alone_is_under_ingress(tracked):
    """Without client_info the tracking tween still installs (INGRESS fallback)."""
    from pyramid.interfaces import ITweens

    app = testing.make_app({}, includes=("c2cwsgiutils.request_tracking",))
    names = [name for name, _ in app.registry.queryUtility(ITweens).implicit()]
    assert names[0] == "c2cwsgiutils.request_tracking.request_tracking_tween_factory"


# --- properties --------------------------------------------------------------------------------

_HEX = "0123456789abcdef"


@given(st.text(alphabet=st.sampled_from(list(_HEX + "-ABCDEF\x00 \t")) | st.characters(), max_size=80))
def test_traceparent_parser_never_raises(header):
    """Any text is either rejected or gives ids found in the header."""
    parsed = _traceparent.parse(header)
    if parsed is not None:
        trace_id, parent_id, flags = parsed
        assert trace_id in header
        assert parent_id in header
        assert trace_id != "0" * 32
        assert flags in {"00", "01"}


@given(
    st.text(alphabet=_HEX, min_size=32, max_size=32),
    st.text(alphabet=_HEX, min_size=16, max_size=16),
    st.sampled_from(["00", "01"]),
)
def test_traceparent_round_trip(trace_id, span_id, flags):
    """A formatted trace parses back to itself unless an id is all zeros."""
    parsed = _traceparent.parse(_traceparent.format_header((trace_id, span_id, flags)))
    if trace_id == "0" * 32 or span_id == "0" * 16:
        assert parsed is None
    else:
        assert parsed == (trace_id, span_id, flags)


@given(st.text(max_size=300))
def test_for_request_always_gives_a_valid_trace(header):
    """Whatever the incoming header, the request's traceparent is valid and parseable."""
    trace = _traceparent.for_request(header)
    assert _traceparent.parse(_traceparent.format_header(trace)) == trace


def test_default_timeout_replaces_a_positional_none(tracked, server):
    """The default timeout also fills a timeout passed positionally as None."""
    url, _ = server
    tracked({"c2c.requests_default_timeout": "0.1"})
    session = requests.Session()
    prepared = session.prepare_request(requests.Request("GET", url + "/slow"))
    with pytest.raises(requests.exceptions.Timeout):
        session.get_adapter(url).send(prepared, False, None)


def test_generated_ids_are_never_all_zeros(monkeypatch):
    """An all-zero random draw is discarded: trace and span ids are always valid."""
    draws = iter([0, int("01" * 16, 16), 0, int("02" * 8, 16)])
    monkeypatch.setattr(_traceparent, "_getrandbits", lambda bits: next(draws))
    assert _traceparent.new_trace_id() == "01" * 16
    assert _traceparent.new_span_id() == "02" * 8


def test_new_trace_of_a_request_is_never_all_zeros(monkeypatch):
    """A new trace draws both ids at once and draws again while either one is all zeros."""
    draws = iter([int("01" * 8, 16), int("03" * 16, 16) << 64, int("04" * 16 + "05" * 8, 16)])
    monkeypatch.setattr(_traceparent, "_getrandbits", lambda bits: next(draws))
    assert _traceparent.for_request(None) == ("04" * 16, "05" * 8, "00")


def test_request_ids_are_version_4_uuids():
    """Generated request ids are distinct random UUIDs, version 4, RFC 4122 variant."""
    ids = {_traceparent.new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in ids:
        value = uuid.UUID(text)
        assert (str(value), value.version, value.variant) == (text, 4, uuid.RFC_4122)
