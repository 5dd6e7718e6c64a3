import hashlib
import logging

import pytest
from itsdangerous import TimestampSigner
from pyramid.config import Configurator

from c2cwsgiutils import auth, testing

SECRET = "a-very-good-secret-value"
_INCLUDES = (
    "c2cwsgiutils.pretty_json",
    "c2cwsgiutils.request_tracking",
    "c2cwsgiutils.auth",
    "c2cwsgiutils.errors",
)
_FORBIDDEN = "Missing or invalid secret (parameter, X-API-Key header or cookie)"


def _protected(request):
    auth.auth_view(request)
    # A second check in the same request must not recompute (nor set a second cookie).
    assert auth.is_auth(request)
    return {"ok": True, "access": auth.check_access(request)}


def _status(request):
    return {"auth": auth.is_auth(request), "user": auth.is_auth_user(request)[1]}


def _configure(config):
    config.add_route("protected", "/protected")
    config.add_view(_protected, route_name="protected", renderer="fast_json")
    config.add_route("status", "/status")
    config.add_view(_status, route_name="status", renderer="fast_json")


@pytest.fixture
def make(app_factory):
    """Build the test application with extra settings."""

    def build(settings=None):
        full = {"c2c.secret": SECRET, "c2c.enable_exception_handling": "1"}
        full.update(settings or {})
        return app_factory(full, includes=_INCLUDES, configure=_configure)

    return build


def _cookie_header(response) -> str:
    cookies = [v for n, v in response.headerlist if n == "Set-Cookie" and v.startswith("C2C_SECRET=")]
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_secret_in_query_string_logs_in(make):
    """A good ``secret`` parameter opens the view and sets a hardened cookie."""
    app = make()

    response = app.get("/protected", params={"secret": SECRET})

    assert response.json == {"ok": True, "access": True}
    cookie = _cookie_header(response)
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert f"max-age={auth.COOKIE_AGE}" in attributes
    assert "secure" not in attributes


def test_cookie_is_neither_the_secret_nor_its_hash(make):
    """The cookie value is a signed token, not a reusable form of the secret."""
    app = make()

    value = app.get("/protected", params={"secret": SECRET}).headers["Set-Cookie"].split(";")[0]
    value = value.split("=", 1)[1]

    assert SECRET not in value
    assert hashlib.sha256(SECRET.encode()).hexdigest() not in value
    assert hashlib.sha256(SECRET.encode()).hexdigest().upper() not in value.upper()


def test_cookie_is_secure_on_https(make):
    """On HTTPS the cookie gets the ``Secure`` attribute."""
    app = make()

    response = app.get("/protected", params={"secret": SECRET}, extra_environ={"wsgi.url_scheme": "https"})

    assert "secure" in [part.strip().lower() for part in _cookie_header(response).split(";")]


def test_cookie_authenticates_later_requests(make):
    """After a login, the cookie alone authenticates, and is not refreshed on every request."""
    app = make()
    app.get("/protected", params={"secret": SECRET})

    response = app.get("/protected")

    assert response.json["ok"] is True
    assert "Set-Cookie" not in response.headers


def test_secret_in_header(make):
    """The ``X-API-Key`` header authenticates too."""
    response = make().get("/protected", headers={"X-API-Key": SECRET})

    assert response.json["ok"] is True
    assert _cookie_header(response)


def test_secret_in_form_body(make):
    """The ``secret`` parameter may come in a form body (POST)."""
    response = make().post("/protected", {"secret": SECRET})

    assert response.json["ok"] is True


def test_cookie_set_once_per_request(make):
    """The authentication is computed once per request: one cookie even if checked twice."""
    response = make().get("/protected", headers={"X-API-Key": SECRET})

    assert len([n for n, _ in response.headerlist if n == "Set-Cookie"]) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"params": {"secret": "wrong"}},
        {"headers": {"X-API-Key": "wrong"}},
        {"params": {"secret": SECRET[:-1]}},
    ],
)
def test_missing_or_wrong_secret_is_forbidden(make, kwargs):
    """Without the right secret the view answers 403 with the documented message, and no cookie."""
    response = make().get("/protected", status=403, **kwargs)

    assert response.json["message"] == _FORBIDDEN
    assert "Set-Cookie" not in response.headers


def test_wrong_parameter_is_not_rescued_by_cookie(make):
    """An explicit wrong secret is refused even with a valid cookie."""
    app = make()
    app.get("/protected", params={"secret": SECRET})

    app.get("/protected", params={"secret": "wrong"}, status=403)


def test_tampered_cookie_is_refused(make):
    """A modified token is refused."""
    app = make()
    token = app.get("/protected", params={"secret": SECRET}).headers["Set-Cookie"].split(";")[0]
    token = token.split("=", 1)[1]
    app.reset()

    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    app.get("/protected", headers={"Cookie": f"C2C_SECRET={forged}"}, status=403)
    app.get(
        "/protected",
        headers={"Cookie": f"C2C_SECRET={hashlib.sha256(SECRET.encode()).hexdigest()}"},
        status=403,
    )


def test_expired_cookie_is_refused(make, monkeypatch):
    """A token older than ``COOKIE_AGE`` is refused."""
    app = make()
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - auth.COOKIE_AGE - 10)
    app.get("/protected", params={"secret": SECRET})
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)

    app.get("/protected", status=403)


def test_cookie_of_another_secret_is_refused(make):
    """Changing the secret revokes the cookies issued with the old one."""
    old = make({"c2c.secret": "the-old-secret-value"})
    token = old.get("/protected", params={"secret": "the-old-secret-value"}).headers["Set-Cookie"]
    token = token.split(";")[0].split("=", 1)[1]

    make().get("/protected", headers={"Cookie": f"C2C_SECRET={token}"}, status=403)


@pytest.mark.parametrize("kwargs", [{"params": {"secret": ""}}, {"headers": {"X-API-Key": ""}}])
def test_empty_secret_logs_out(make, kwargs):
    """An empty secret deletes the cookie; later requests are refused."""
    app = make()
    app.get("/protected", params={"secret": SECRET})

    response = app.get("/status", **kwargs)

    assert response.json == {"auth": False, "user": None}
    cookie = _cookie_header(response)
    assert "max-age=0" in cookie.lower()
    app.get("/protected", status=403)


def test_empty_cookie_logs_out(make):
    """An empty cookie is deleted."""
    response = make().get("/status", headers={"Cookie": "C2C_SECRET="})

    assert response.json["auth"] is False
    assert "max-age=0" in _cookie_header(response).lower()


def test_undecodable_query_string_still_accepts_header(make):
    """A query string that is not UTF-8 does not break the authentication by header."""
    response = make().get("/status?x=%ff", headers={"X-API-Key": SECRET})

    assert response.json["auth"] is True


def test_no_secret_configured_refuses_everyone(make):
    """Without any authentication configured, protected views always answer 403."""
    app = make({"c2c.secret": ""})

    app.get("/protected", params={"secret": ""}, status=403)
    assert app.get("/status", params={"secret": "anything"}).json["auth"] is False


def test_environment_wins_over_ini(make, monkeypatch):
    """``C2C_SECRET`` from the environment wins over ``c2c.secret``."""
    monkeypatch.setenv("C2C_SECRET", "from-the-environment")
    app = make()

    app.get("/protected", params={"secret": SECRET}, status=403)
    app.get("/protected", params={"secret": "from-the-environment"})


def test_secret_never_logged(make):
    """Neither a wrong nor a good secret appears in the log lines of a request."""
    app = make()

    with testing.capture_logs() as records:
        app.get("/protected", params={"secret": "wrong-secret-value"}, status=403)
        app.get("/protected", params={"secret": SECRET})
        app.get("/nowhere", params={"secret": SECRET}, status=404)

    text = "\n".join(record.getMessage() + str(record.__dict__) for record in records)
    assert records
    assert "wrong-secret-value" not in text
    assert SECRET not in text


_GITHUB = {
    "c2c.auth.github.client_id": "id",
    "c2c.auth.github.client_secret": "client-secret",
    "c2c.auth.github.repository": "camptocamp/c2cwsgiutils",
}


def test_auth_type_selection():
    """The secret wins over GitHub; GitHub needs a signing secret of at least 16 characters."""
    long_secret = {"c2c.auth.github.auth.secret": "x" * 16}

    assert auth.auth_type({}) is auth.AuthenticationType.NONE
    assert auth.auth_type({"c2c.secret": "s"}) is auth.AuthenticationType.SECRET
    assert auth.auth_type({**_GITHUB, **long_secret, "c2c.secret": "s"}) is auth.AuthenticationType.SECRET
    assert auth.auth_type({**_GITHUB, **long_secret}) is auth.AuthenticationType.GITHUB


def test_short_github_secret_disables_github():
    """A GitHub signing secret shorter than 16 characters logs an error and disables GitHub."""
    with testing.capture_logs("c2cwsgiutils.auth") as records:
        result = auth.auth_type({**_GITHUB, "c2c.auth.github.auth.secret": "x" * 15})

    assert result is auth.AuthenticationType.NONE
    assert [r.levelno for r in records] == [logging.ERROR]
    assert "x" * 15 not in records[0].getMessage()


def test_github_mode_is_not_authenticated_yet(make):
    """GitHub mode is detected; until its login exists nobody is authenticated."""
    app = make({"c2c.secret": "", **_GITHUB, "c2c.auth.github.auth.secret": "y" * 20})

    assert app.get("/status").json["auth"] is False
    app.get("/protected", status=403)


def test_auth_type_computed_once_per_application(make, monkeypatch):
    """The environment is read when the application is built, not on each request."""
    app = make()
    monkeypatch.setenv("C2C_SECRET", "changed-later")

    app.get("/protected", params={"secret": SECRET})


def test_helpers_without_includeme():
    """The helpers work on a request of an application that did not include ``auth``."""
    from pyramid import testing as pyramid_testing

    pyramid_testing.setUp(settings={"c2c.secret": SECRET})
    try:
        request = pyramid_testing.DummyRequest(params={"secret": SECRET})
        assert auth.get_expected_secret(request) == SECRET
        assert auth.is_auth(request) is True
        assert auth.check_access_config(request, {"github_repository": "a/b"}) is True
        assert auth.is_auth(pyramid_testing.DummyRequest()) is False
        assert auth.check_access(pyramid_testing.DummyRequest()) is False
    finally:
        pyramid_testing.tearDown()


def test_check_access_without_secret():
    """Without the secret mode, ``check_access`` refuses."""
    from pyramid import testing as pyramid_testing

    pyramid_testing.setUp(settings={})
    try:
        assert auth.check_access(pyramid_testing.DummyRequest(params={"secret": ""})) is False
    finally:
        pyramid_testing.tearDown()


def test_is_enabled(monkeypatch):
    """``is_enabled`` reads a boolean flag from the environment or the ini settings."""
    config = Configurator(settings={"c2c.flag": "true", "c2c.off": "false"})

    assert auth.is_enabled(config, "C2C_FLAG", "c2c.flag") is True
    assert auth.is_enabled(config, "C2C_OFF", "c2c.off") is False
    assert auth.is_enabled(config, "C2C_MISSING", "c2c.missing") is False
    monkeypatch.setenv("C2C_OFF", "1")
    assert auth.is_enabled(config, "C2C_OFF", "c2c.off") is True


def test_public_constants():
    """The public names of the interface keep their values."""
    assert (auth.SECRET_ENV, auth.SECRET_PROP) == ("C2C_SECRET", "c2c.secret")
    assert auth.COOKIE_AGE == 7 * 24 * 3600
    assert auth.GITHUB_AUTH_SECRET_ENV == "C2C_AUTH_GITHUB_SECRET"
    assert auth.GITHUB_AUTH_COOKIE_PROP == "c2c.auth.github.auth.cookie"
    assert [t.value for t in auth.AuthenticationType] == [0, 1, 2]


def test_forbidden_without_error_views(app_factory):
    """Without the JSON error views, the 403 still carries the documented message."""
    app = app_factory(
        {"c2c.secret": SECRET},
        includes=("c2cwsgiutils.pretty_json", "c2cwsgiutils.auth"),
        configure=_configure,
    )

    assert _FORBIDDEN in app.get("/protected", status=403).text
