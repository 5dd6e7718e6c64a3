import logging
import sys

import pytest
import sqlalchemy as sa
from pyramid import httpexceptions
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

from c2cwsgiutils import testing

SECRET = "error-details-secret"
_INCLUDES = (
    "c2cwsgiutils.pretty_json",
    "c2cwsgiutils.request_tracking",
    "c2cwsgiutils.auth",
    "c2cwsgiutils.errors",
)
_ENABLED = {"c2c.enable_exception_handling": "1", "c2c.secret": SECRET}


class _BoomError(Exception):
    """An unexpected error whose message must not leak in production."""


def _exception_class(module: str, name: str) -> type[Exception]:
    return type(name, (Exception,), {"__module__": module})


_ClientError = _exception_class("botocore.exceptions", "ClientError")
_BeakerException = _exception_class("beaker.exceptions", "BeakerException")


def _client_error(response):
    error = _ClientError(f"An error occurred ({response})")
    error.response = response
    return error


def _raise(exception):
    def view(request):
        raise exception

    return view


def _integrity_error():
    engine = sa.create_engine("sqlite://", poolclass=StaticPool)
    metadata = sa.MetaData()
    table = sa.Table("thing", metadata, sa.Column("name", sa.String, unique=True))
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), {"name": "private-value"})
        try:
            connection.execute(table.insert(), {"name": "private-value"})
        except sa_exc.IntegrityError as error:
            return error
    raise AssertionError("no IntegrityError")


def _decode_in_app(request):
    return {"value": b"\xff".decode()}


def _read_params(request):
    return {"params": dict(request.params)}


_VIEWS = {
    "boom": _raise(_BoomError("internal detail: password=hunter2")),
    "unauthorized": _raise(httpexceptions.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="x"'})),
    "server_error": _raise(httpexceptions.HTTPInternalServerError("broken")),
    "teapot": _raise(httpexceptions.HTTPBadRequest("you asked wrongly")),
    "redirect": _raise(httpexceptions.HTTPFound(location="http://example.com/elsewhere")),
    "no_content": _raise(httpexceptions.HTTPNoContent()),
    "reset": _raise(ConnectionResetError("peer reset")),
    "boto": _raise(_client_error({"ResponseMetadata": {"HTTPStatusCode": 404}})),
    "boto_code": _raise(_client_error({"Error": {"Code": "409"}})),
    "boto_odd": _raise(_client_error({"Error": {"Code": "NoSuchThing"}})),
    "beaker": _raise(_BeakerException("Invalid signature")),
    "integrity": _raise(_integrity_error()),
    "data": _raise(sa_exc.DataError("SELECT private", {"p": "private-value"}, Exception("bad data"))),
    "decode": _decode_in_app,
    "params": _read_params,
}


def _configure(config):
    for name, view in _VIEWS.items():
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, renderer="fast_json")


@pytest.fixture
def make(app_factory):
    """Build the test application with extra settings."""

    def build(settings=None):
        full = dict(_ENABLED)
        full.update(settings or {})
        return app_factory(full, includes=_INCLUDES, configure=_configure)

    return build


def _assert_no_cache(response):
    assert "no-cache" in response.headers["Cache-Control"]
    assert response.headers["Pragma"] == "no-cache"


def _assert_crude_cors(response, methods):
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert set(response.headers["Access-Control-Allow-Methods"].split(",")) == methods
    assert response.headers["Access-Control-Allow-Headers"] == "session-id"
    assert response.headers["Access-Control-Max-Age"] == "86400"


@pytest.mark.parametrize("value", [None, "0", "false", "no", ""])
def test_disabled_by_default_and_by_false_values(app_factory, value):
    """Without a true ``C2C_ENABLE_EXCEPTION_HANDLING`` exceptions are not turned into JSON."""
    settings = {} if value is None else {"c2c.enable_exception_handling": value}
    app = app_factory(settings, includes=_INCLUDES, configure=_configure)

    with pytest.raises(_BoomError):
        app.get("/boom")


def test_enabled_from_environment(app_factory, monkeypatch):
    """``C2C_ENABLE_EXCEPTION_HANDLING=true`` enables the error views."""
    monkeypatch.setenv("C2C_ENABLE_EXCEPTION_HANDLING", "true")
    app = app_factory({}, includes=_INCLUDES, configure=_configure)

    assert app.get("/boom", status=500).json["status"] == 500


def test_unexpected_error_in_production_hides_details(make):
    """In production, a 500 has a generic message, the request id, and no stack trace."""
    with testing.capture_logs("c2cwsgiutils.errors") as records:
        response = make().get("/boom", status=500, headers={"X-Request-ID": "req-42"})

    assert response.content_type == "application/json"
    assert response.json == {"message": "Internal Server Error", "status": 500, "request_id": "req-42"}
    assert "hunter2" not in response.text
    _assert_no_cache(response)
    _assert_crude_cors(response, {"GET", "HEAD", "OPTIONS"})
    assert [r.levelno for r in records] == [logging.ERROR, logging.WARNING]
    assert records[0].exc_info is not None
    assert "internal detail" in records[0].getMessage()
    assert records[1].getMessage() == "GET /boom returned status code 500 (route: boom)"


def test_request_id_generated_when_none_given(make):
    """The request id of the body is the one echoed in the response header."""
    response = make().get("/boom", status=500)

    assert response.json["request_id"] == response.headers["X-Request-ID"]
    assert len(response.json["request_id"]) >= 32


def test_request_id_without_request_tracking(app_factory):
    """Even without request tracking, every error body carries a request id."""
    app = app_factory(
        _ENABLED, includes=("c2cwsgiutils.pretty_json", "c2cwsgiutils.errors"), configure=_configure
    )

    assert app.get("/boom", status=500).json["request_id"]


@pytest.mark.parametrize(
    ("settings", "env", "kwargs"),
    [
        ({}, {"DEVELOPMENT": "1"}, {}),
        ({"c2c.development": "true"}, {}, {}),
        ({}, {}, {"params": {"secret": SECRET}}),
        ({}, {}, {"headers": {"X-API-Key": SECRET}}),
    ],
)
def test_details_in_development_or_with_secret(make, monkeypatch, settings, env, kwargs):
    """In development mode or with the secret, the message and the stack trace are given."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    response = make(settings).get("/boom", status=500, **kwargs)

    assert response.json["message"] == "internal detail: password=hunter2"
    assert "_BoomError" in response.json["stacktrace"]
    assert "def view" in response.json["stacktrace"] or "in view" in response.json["stacktrace"]


def test_wrong_secret_gives_no_details(make):
    """A wrong secret does not reveal the stack trace."""
    response = make().get("/boom", status=500, params={"secret": "nope"})

    assert "stacktrace" not in response.json


def test_http_error_keeps_status_headers_and_message(make):
    """A raised HTTP error keeps its status, its headers and its message; 401 is logged at DEBUG."""
    with testing.capture_logs("c2cwsgiutils.errors") as records:
        response = make().get("/unauthorized", status=401)

    assert response.headers["WWW-Authenticate"] == 'Basic realm="x"'
    assert response.json["status"] == 401
    assert response.json["message"]
    assert "stacktrace" not in response.json
    _assert_no_cache(response)
    assert [r.levelno for r in records] == [logging.DEBUG]
    assert records[0].getMessage().startswith("GET http://localhost/unauthorized returned status code 401")


@pytest.mark.parametrize(
    ("path", "status", "level", "message"),
    [
        ("/teapot", 400, logging.WARNING, "you asked wrongly"),
        ("/server_error", 500, logging.ERROR, "broken"),
        ("/not-a-route", 404, logging.WARNING, "/not-a-route"),
    ],
)
def test_http_error_log_levels(make, path, status, level, message):
    """HTTP errors are logged at WARNING, except 500 at ERROR; the router's 404 is JSON too."""
    with testing.capture_logs("c2cwsgiutils.errors") as records:
        response = make().get(path, status=status, headers={"Referer": "http://ref/?secret=abc"})

    assert response.json["message"] == message
    assert response.json["status"] == status
    # A 5xx also gets the WARNING line of every server error.
    assert [r.levelno for r in records] == [level] + ([logging.WARNING] if status >= 500 else [])
    assert records[0].getMessage() == f"GET http://localhost{path} returned status code {status}: {message}"
    assert records[0].referrer == "http://ref/?secret=***"


def test_options_on_error_answers_200_with_cors(make):
    """An OPTIONS request that fails (e.g. no such route) gets an empty 200 with CORS headers."""
    response = make().options("/not-a-route", headers={"Access-Control-Request-Method": "PUT"})

    assert response.status_code == 200
    assert response.body == b""
    _assert_crude_cors(response, {"PUT", "HEAD", "OPTIONS"})


def test_redirect_passes_through(make):
    """A raised redirection keeps its Location, with CORS and no-cache headers."""
    response = make().get("/redirect", status=302)

    assert response.headers["Location"] == "http://example.com/elsewhere"
    _assert_no_cache(response)
    _assert_crude_cors(response, {"GET", "HEAD", "OPTIONS"})


def test_no_content_passes_through(make):
    """A raised 204 stays without body nor Content-Type."""
    response = make().post("/no_content", status=204)

    assert response.body == b""
    assert "Content-Type" not in response.headers
    _assert_crude_cors(response, {"POST", "HEAD", "OPTIONS"})


def test_integrity_error_in_production_is_a_400_with_the_database_message(make):
    """A database integrity error answers 400 with the database's message, not the statement."""
    with testing.capture_logs("c2cwsgiutils.errors") as records:
        response = make().get("/integrity", status=400)

    assert response.json["status"] == 400
    assert response.json["message"] == "UNIQUE constraint failed: thing.name"
    text = response.text
    for leak in ("INSERT", "private-value", "sqlite", "[SQL"):
        assert leak not in text
    assert "stacktrace" not in response.json
    assert [r.levelno for r in records] == [logging.WARNING]


def test_integrity_error_details_in_development(make, monkeypatch):
    """In development mode the database error is given in full."""
    monkeypatch.setenv("DEVELOPMENT", "1")

    response = make().get("/integrity", status=400)

    assert "UNIQUE constraint failed" in response.json["message"]
    assert "INSERT INTO thing" in response.json["message"]
    assert "IntegrityError" in response.json["stacktrace"]


def test_data_error_is_a_400(make):
    """A database data error answers 400 with the driver's message, without statement nor parameters."""
    response = make().get("/data", status=400)

    assert response.json["message"] == "bad data"
    assert "private" not in response.text


class _Diagnostics:
    message_primary = "value too long for type character varying(3)"


class _DriverError(Exception):
    """A DBAPI error as psycopg and psycopg2 give it: ``diag.message_primary``, then the DETAIL."""

    diag = _Diagnostics()


@pytest.mark.parametrize(
    ("orig", "message"),
    [
        (
            _DriverError("value too long for type character varying(3)\nDETAIL:  private-detail\n"),
            "value too long for type character varying(3)",
        ),
        (Exception("first line\nDETAIL:  private-detail"), "first line"),
        (Exception("no statement [SQL: SELECT private-detail]"), "no statement"),
        (Exception("x" * 5000), "x" * 1000),
        (Exception(""), "Bad Request: the data is not valid for the database"),
    ],
    ids=["diagnostics", "first-line", "sql-part", "bounded", "empty"],
)
def test_database_message_without_detail(app_factory, orig, message):
    """The answer has the primary message of the driver's error, never its DETAIL nor the statement."""
    error = sa_exc.DataError("SELECT private-statement", {"p": "private-param"}, orig)

    def configure(config):
        config.add_route("data", "/data")
        config.add_view(_raise(error), route_name="data", renderer="fast_json")

    response = app_factory(_ENABLED, includes=_INCLUDES, configure=configure).get("/data", status=400)

    assert response.json["message"] == message
    assert "private" not in response.text


def test_integrity_error_at_commit(app_factory):
    """An integrity error raised when pyramid_tm commits is a 400 too."""
    import zope.sqlalchemy

    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = "item"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(unique=True)

    engine = sa.create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)

    def view(request):
        session = Session(engine, autoflush=False)
        zope.sqlalchemy.register(session, transaction_manager=request.tm)
        # Nothing reaches the database before the commit, made by pyramid_tm after the view.
        session.add_all([Item(name="dup-value"), Item(name="dup-value")])
        return {"ok": True}

    def configure(config):
        config.add_route("commit", "/commit")
        config.add_view(view, route_name="commit", renderer="fast_json")

    app = app_factory(_ENABLED, includes=("pyramid_tm", *_INCLUDES), configure=configure)

    response = app.post("/commit", status=400)

    assert response.json["status"] == 400
    assert response.json["message"] == "UNIQUE constraint failed: item.name"
    assert "dup-value" not in response.text


def test_connection_reset_logged_at_info(make):
    """A client that went away is a 500 logged at INFO only (no WARNING of a server error)."""
    with testing.capture_logs("c2cwsgiutils.errors") as records:
        response = make().get("/reset", status=500)

    assert response.json["message"] == "Internal Server Error"
    assert [r.levelno for r in records] == [logging.INFO]


@pytest.mark.parametrize(
    ("path", "status"), [("/boto", 404), ("/boto_code", 409), ("/boto_odd", 500), ("/beaker", 401)]
)
def test_errors_of_optional_libraries(make, path, status):
    """Client errors of botocore keep their HTTP status; beaker's invalid signature is a 401."""
    response = make().get(path, status=status)

    assert response.json["status"] == status
    assert "An error occurred" not in response.text


def test_problem_json_on_request(make):
    """A client that asks for ``application/problem+json`` gets an RFC 9457 document."""
    response = make().get(
        "/boom", status=500, headers={"Accept": "application/problem+json", "X-Request-ID": "r-1"}
    )

    assert response.content_type == "application/problem+json"
    assert response.json == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "Internal Server Error",
        "instance": "/boom",
        "request_id": "r-1",
    }


def test_problem_json_with_details(make):
    """The problem document carries the details and stack trace in development mode too."""
    response = make({"c2c.development": "1"}).get(
        "/teapot", status=400, headers={"Accept": "application/problem+json"}
    )

    assert response.json["title"] == "Bad Request"
    assert response.json["detail"] == "you asked wrongly"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/problem+json", "application/problem+json"),
        ("application/problem+json, application/json", "application/problem+json"),
        ("application/json, application/problem+json;q=0.5", "application/json"),
        ("application/problem+json;q=0.9, application/json;q=0.1", "application/problem+json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("text/html", "application/json"),
        ("garbage;;;=", "application/json"),
    ],
)
def test_problem_json_negotiation(make, accept, expected):
    """problem+json is chosen only when the client prefers it; legacy JSON otherwise."""
    response = make().get("/teapot", status=400, headers={"Accept": accept})

    assert response.content_type == expected


def test_non_utf8_query_string_is_a_400(make):
    """A query string that is not UTF-8 is the client's error, answered in JSON."""
    with testing.capture_logs("c2cwsgiutils.errors") as records:
        response = make().get("/params?name=%ff&secret=abc", status=400)

    assert response.json["status"] == 400
    assert "UTF-8" in response.json["message"]
    assert "stacktrace" not in response.json
    assert "secret=abc" not in records[0].getMessage()


def test_non_utf8_path_is_a_400(make):
    """A path that is not UTF-8 is answered 400 in JSON, with a usable instance path."""
    response = make().get("/%ff%fe", status=400, headers={"Accept": "application/problem+json"})

    assert response.json["status"] == 400
    assert response.json["instance"] == "/%FF%FE"


def test_decode_error_of_the_application_is_a_500(make):
    """A decoding bug of the application, on a valid request, stays a 500."""
    make().get("/decode", status=500)


def test_huge_header_is_not_a_500(make):
    """An absurdly long Accept header does not break the error answer."""
    response = make().get("/teapot", status=400, headers={"Accept": "x" * 20000})

    assert response.json["status"] == 400


def test_error_on_cornice_service_uses_cornice_cors(app_factory):
    """Errors of a cornice service get the service's CORS headers, not the crude ones."""
    from c2cwsgiutils import services

    service = services.create("failing", "/failing", cors_credentials=True)

    @service.get()
    def failing(request):
        raise _BoomError("no")

    app = app_factory(
        {**_ENABLED, "handle_exceptions": "false"},
        includes=("cornice", *_INCLUDES),
        configure=lambda config: config.add_cornice_service(service),
    )

    response = app.get("/failing", status=500, headers={"Origin": "http://client.example"})

    assert response.headers["Access-Control-Allow-Origin"] == "http://client.example"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Access-Control-Allow-Headers" not in response.headers


def test_plain_route_in_cornice_application_gets_crude_cors(app_factory):
    """A route that is not a cornice service gets the crude CORS headers, even with cornice."""
    from c2cwsgiutils import services

    service = services.create("other", "/other")
    service.add_view("GET", lambda _request: {})

    def configure(config):
        _configure(config)
        config.add_cornice_service(service)

    app = app_factory(
        {**_ENABLED, "handle_exceptions": "false"}, includes=("cornice", *_INCLUDES), configure=configure
    )

    response = app.get("/boom", status=500, headers={"Origin": "http://client.example"})

    _assert_crude_cors(response, {"GET", "HEAD", "OPTIONS"})


def test_cornice_service_without_cors(app_factory):
    """A cornice service with CORS disabled gets no CORS header on its errors."""
    from cornice import Service

    service = Service("closed", "/closed", cors_enabled=False)

    @service.get()
    def closed(request):
        raise _BoomError("no")

    app = app_factory(
        {**_ENABLED, "handle_exceptions": "false"},
        includes=("cornice", *_INCLUDES),
        configure=lambda config: config.add_cornice_service(service),
    )

    response = app.get("/closed", status=500, headers={"Origin": "http://client.example"})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_invalid_requested_method_is_not_echoed(make):
    """A malformed ``Access-Control-Request-Method`` is not copied into the CORS answer."""
    response = make().options("/not-a-route", headers={"Access-Control-Request-Method": "GET, <x>"})

    _assert_crude_cors(response, {"HEAD", "OPTIONS"})


def test_without_sqlalchemy(app_factory, monkeypatch):
    """Without SQLAlchemy installed, the other error views still work."""
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    app = app_factory(_ENABLED, includes=_INCLUDES)

    assert app.get("/nowhere", status=404).json["status"] == 404


def _returned(status):
    def view(request):
        from pyramid.response import Response

        return Response(json_body={"returned": status}, status=status)

    return view


def _configure_returned(config):
    for status in (400, 401, 502, 503):
        config.add_route(f"returned_{status}", f"/returned/{status}")
        config.add_view(_returned(status), route_name=f"returned_{status}")
    config.add_route("boom", "/boom")
    config.add_view(_VIEWS["boom"], route_name="boom")


@pytest.mark.parametrize("enabled", [True, False], ids=["error-views", "no-error-views"])
def test_returned_server_error_logged_at_warning(app_factory, enabled):
    """A 5xx a view returns without raising is logged at WARNING with method, path and route."""
    app = app_factory(_ENABLED if enabled else {}, includes=_INCLUDES, configure=_configure_returned)

    with testing.capture_logs("c2cwsgiutils.errors") as records:
        app.get("/returned/503", status=503)
        app.post("/returned/502", status=502)
        app.get("/returned/400", status=400)
        app.get("/returned/401", status=401)

    assert [(r.levelno, r.getMessage(), r.status) for r in records] == [
        (logging.WARNING, "GET /returned/503 returned status code 503 (route: returned_503)", 503),
        (logging.WARNING, "POST /returned/502 returned status code 502 (route: returned_502)", 502),
    ]


def test_exception_that_reaches_the_server_is_logged(app_factory):
    """Without the error views, an exception that reaches the server is logged at WARNING too."""
    app = app_factory({}, includes=_INCLUDES, configure=_configure_returned)

    with testing.capture_logs("c2cwsgiutils.errors") as records, pytest.raises(_BoomError):
        app.get("/boom")

    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, "GET /boom returned status code 500 (route: boom), _BoomError raised")
    ]


def test_server_error_at_commit_is_logged(app_factory):
    """A 500 answered to an error raised when pyramid_tm commits is logged at WARNING (tween over it)."""

    def fail_at_commit():
        raise _BoomError("at commit")

    def view(request):
        request.tm.get().addBeforeCommitHook(fail_at_commit)
        return {"ok": True}

    def configure(config):
        config.add_route("commit", "/commit")
        config.add_view(view, route_name="commit", renderer="fast_json")

    app = app_factory(_ENABLED, includes=("pyramid_tm", *_INCLUDES), configure=configure)

    with testing.capture_logs("c2cwsgiutils.errors") as records:
        app.post("/commit", status=500)

    assert [r.levelno for r in records] == [logging.ERROR, logging.WARNING]
    assert records[1].getMessage() == "POST /commit returned status code 500 (route: commit)"
