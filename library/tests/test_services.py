import logging
import sys

import pytest

from c2cwsgiutils import services, testing

_INCLUDES = ("cornice", "c2cwsgiutils.pretty_json")

# At module level so that ``config.scan`` finds it: ``create`` attaches it to this module.
scanned_service = services.create("scanned", "/scanned")


@scanned_service.get()
def _scanned_get(request):
    return {"scanned": True}


def _app(app_factory, *services_):
    def configure(config):
        for service in services_:
            config.add_cornice_service(service)

    return app_factory({"handle_exceptions": "false"}, includes=_INCLUDES, configure=configure)


def _hello(**kwargs):
    service = services.create("hello", "/hello", **kwargs)

    @service.get()
    def get(request):
        return {"hello": "wörld"}

    @service.put()
    def put(request):
        return {"put": True}

    return service


def _preflight(app, url="/hello", **headers):
    return app.options(
        url,
        headers={
            "Origin": "http://client.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "X-Foo, Content-Type ,X-Bar",
            **headers,
        },
    )


def test_preflight_with_credentials(app_factory):
    """A pre-flight answer echoes the origin and may be cached for a day by the browser."""
    response = _preflight(_app(app_factory, _hello(cors_credentials=True)))

    assert response.status_code == 200
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == "http://client.example"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert sorted(headers["Access-Control-Allow-Methods"].split(",")) == ["GET", "HEAD", "OPTIONS", "PUT"]
    assert sorted(headers["Access-Control-Allow-Headers"].split(",")) == ["Content-Type", "X-Bar", "X-Foo"]
    assert headers["Access-Control-Max-Age"] == "86400"
    assert headers["Vary"] == "Origin"
    assert headers["Cache-Control"] == "max-age=86400"
    assert "Pragma" not in headers


def test_preflight_without_credentials(app_factory):
    """Without credentials, any origin is allowed with ``*``."""
    response = _preflight(_app(app_factory, _hello()))

    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_preflight_max_age_is_overridable(app_factory):
    """``cors_max_age`` sets both the CORS max age and the cache duration of the pre-flight."""
    response = _preflight(_app(app_factory, _hello(cors_max_age=60)))

    assert response.headers["Access-Control-Max-Age"] == "60"
    assert response.headers["Cache-Control"] == "max-age=60"


def test_normal_response_is_not_cached_and_allows_any_origin(app_factory):
    """A normal answer is CORS-enabled, rendered with non-ASCII kept, and not cacheable."""
    response = _app(app_factory, _hello()).get("/hello", headers={"Origin": "http://client.example"})

    assert response.json == {"hello": "wörld"}
    assert "wörld".encode() in response.body
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "no-cache" in response.headers["Cache-Control"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_normal_response_with_credentials(app_factory):
    """With credentials the origin is echoed and credentials allowed."""
    response = _app(app_factory, _hello(cors_credentials=True)).get(
        "/hello", headers={"Origin": "http://client.example"}
    )

    assert response.headers["Access-Control-Allow-Origin"] == "http://client.example"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "no-cache" in response.headers["Cache-Control"]


def test_restricted_origins(app_factory):
    """``cors_origins`` restricts the origins, as in cornice."""
    app = _app(app_factory, _hello(cors_origins=("http://good.example",)))

    assert (
        app.get("/hello", headers={"Origin": "http://good.example"}).headers["Access-Control-Allow-Origin"]
        == "http://good.example"
    )
    app.get("/hello", headers={"Origin": "http://evil.example"}, status=400)


def test_user_filters_are_kept(app_factory):
    """Filters given by the application still run, before the pre-flight cache filter."""
    calls = []

    def user_filter(response, request):
        calls.append(request.method)
        response.headers["X-Filtered"] = "yes"
        return response

    app = _app(app_factory, _hello(filters=user_filter))

    assert app.get("/hello").headers["X-Filtered"] == "yes"
    assert _preflight(app).headers["Cache-Control"] == "max-age=86400"
    assert calls == ["GET", "OPTIONS"]


def test_scanned_service(app_factory):
    """A module-level service is attached to its module, so ``config.scan`` registers it."""

    def configure(config):
        config.scan(sys.modules[__name__])

    app = app_factory({"handle_exceptions": "false"}, includes=_INCLUDES, configure=configure)

    assert app.get("/scanned").json == {"scanned": True}


def test_filter_errors_are_logged_and_raised():
    """An error in the pre-flight cache filter is logged, then raised."""

    class _Request:
        method = "OPTIONS"

    class _BrokenResponse:
        @property
        def headers(self):
            raise RuntimeError("broken headers")

    with testing.capture_logs("c2cwsgiutils.services") as records, pytest.raises(RuntimeError):
        services._cache_cors_preflight(_BrokenResponse(), _Request())

    assert [r.levelno for r in records] == [logging.ERROR]
