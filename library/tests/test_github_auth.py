"""The GitHub login, against a fake GitHub on 127.0.0.1 driven by the real OAuth client."""

import time
import types
import urllib.parse

import _fake_github
import jwt
import pytest
import requests
from pyramid.exceptions import ConfigurationError

from c2cwsgiutils import _github_auth, _settings, auth

_INCLUDES = (
    "c2cwsgiutils.pretty_json",
    "c2cwsgiutils.auth",
    "c2cwsgiutils.errors",
    "c2cwsgiutils.index",
)
_INDEX = "http://localhost/c2c"
_COOKIE = "c2c-auth-jwt"


def _admin(request):
    auth.auth_view(request)
    return {"ok": True}


def _other_admin(request):
    if not auth.is_auth(request):
        from pyramid.httpexceptions import HTTPForbidden

        raise HTTPForbidden("no")
    return {"ok": True}


def _configure(config):
    config.add_route("admin", "/admin")
    config.add_view(_admin, route_name="admin", renderer="fast_json")
    config.add_route("other_admin", "/other_admin")
    config.add_view(_other_admin, route_name="other_admin", renderer="fast_json")


@pytest.fixture
def github(monkeypatch):
    """A running fake GitHub (plain HTTP on loopback, allowed to the OAuth client here only)."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    yield from _fake_github.serve()


@pytest.fixture
def make(app_factory, github):
    """Build the application in GitHub mode, with extra settings."""

    def build(settings=None, configure=_configure):
        full = {**github.settings(), "c2c.enable_exception_handling": "1", **(settings or {})}
        return app_factory(full, includes=_INCLUDES, configure=configure)

    return build


def _authorize(app, came_from=_INDEX, **kwargs):
    """Start the login and let the fake GitHub redirect back: return the callback path."""
    response = app.get("/c2c/github-login", params={"came_from": came_from}, status=302, **kwargs)
    answer = requests.get(response.location, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    callback = answer.headers["Location"]
    assert callback.startswith("http://localhost/c2c/github-callback?")
    return callback.removeprefix("http://localhost")


def _login(app, came_from=_INDEX):
    return app.get(_authorize(app, came_from), status=302)


def _query(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def _set_cookie(response, name):
    values = [v for n, v in response.headerlist if n == "Set-Cookie" and v.startswith(name + "=")]
    assert len(values) == 1, values
    return values[0]


def test_full_login_of_a_push_user(make, github):
    """A user with ``push`` rights logs in, lands on ``came_from`` and may use the admin views."""
    github.add_user("alice", "push", name="Alice Liddell")
    app = make({"c2c.auth.github.access_type": "push"})

    response = _login(app)

    assert response.location == _INDEX
    cookie = _set_cookie(response, _COOKIE)
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert {"httponly", "samesite=lax", "path=/", "max-age=86400"} <= set(attributes)
    assert "secure" not in attributes
    value = cookie.split(";")[0].split("=", 1)[1]
    claims = jwt.decode(value, options={"verify_signature": False})
    assert claims["login"] == "alice"
    assert claims["exp"] - claims["iat"] == 86400
    [token] = github.tokens
    assert token not in value
    assert token not in str(claims)

    assert app.get("/admin").json == {"ok": True}
    assert app.get("/other_admin").json == {"ok": True}
    page = app.get("/c2c").text
    assert "Logged as" in page
    assert "Alice Liddell" in page
    assert "github-logout" in page


def test_pull_user_is_refused_when_push_is_required(make, github):
    """A user with only ``pull`` rights is logged in but gets 403 on every protected API."""
    github.add_user("bob", "pull")
    app = make({"c2c.auth.github.access_type": "push"})
    _login(app)

    response = app.get("/admin", status=403)
    assert "permission on the repository" in response.json["message"]
    app.get("/other_admin", status=403)
    page = app.get("/c2c").text
    assert "Logged as" in page  # so that the user can log out
    assert "Bob" in page


def test_user_without_access_to_the_repository(make, github):
    """A GitHub user who cannot see the repository at all is refused, even for ``pull``."""
    github.add_user("eve", "admin").permissions.clear()
    app = make()
    _login(app)

    app.get("/admin", status=403)


def test_permissions_are_cached(make, github):
    """The permission is asked to GitHub once per user and repository within the cache time."""
    github.add_user("alice", "admin")
    app = make()
    _login(app)

    for _ in range(3):
        app.get("/admin")

    assert github.repo_requests == 1


def test_permission_cache_can_be_disabled(make, github):
    """With a cache time of 0, each check asks GitHub."""
    github.add_user("alice", "admin")
    app = make({"c2c.auth.github.access_cache_seconds": "0"})
    _login(app)

    app.get("/admin")
    app.get("/admin")

    assert github.repo_requests == 2


def test_forged_state_is_refused(make, github):
    """A callback whose ``state`` is not the one of the login is refused with 403."""
    github.add_user("alice", "admin")
    app = make()
    callback = _authorize(app)
    query = _query(callback)

    response = app.get("/c2c/github-callback", params={**query, "state": "forged"}, status=403)

    assert "OAuth state" in response.json["message"]
    assert _COOKIE not in app.cookies
    app.get("/admin", status=403)


def test_callback_without_state_cookie_is_refused(make, github):
    """A callback sent without the state cookie (CSRF from another browser) is refused with 403."""
    github.add_user("alice", "admin")
    app = make()
    callback = _authorize(app)
    app.reset()

    app.get(callback, status=403)
    assert _COOKIE not in app.cookies


def test_state_in_the_session(make, github):
    """With ``C2C_USE_SESSION`` the state is kept in the session and still verified."""
    from pyramid.session import SignedCookieSessionFactory

    def configure(config):
        config.set_session_factory(SignedCookieSessionFactory("session-secret-of-the-tests"))
        _configure(config)

    github.add_user("alice", "admin")
    app = make({"c2c.use_session": "true"}, configure=configure)

    callback = _authorize(app)
    assert "c2c-auth-jwt-state" not in app.cookies
    query = _query(callback)
    app.get("/c2c/github-callback", params={**query, "state": "forged"}, status=403)
    app.get(_authorize(app), status=302)
    assert app.get("/admin").json == {"ok": True}


def _past_login(settings, seconds_ago):
    github_auth = _github_auth.GitHubAuth(_settings.resolve(auth.AuthSettings, settings))
    fake_time = types.SimpleNamespace(time=lambda: time.time() - seconds_ago, monotonic=time.monotonic)
    original = _github_auth.time
    _github_auth.time = fake_time
    try:
        return github_auth.encode_login("alice", "Alice", "https://github.com/alice", "gho_token")
    finally:
        _github_auth.time = original


def test_expired_login_cookie_is_refused(make, github):
    """A login cookie past its ``exp`` is refused: 403, and the page offers to log in again."""
    github.add_user("alice", "admin")
    app = make()
    app.set_cookie(_COOKIE, _past_login(github.settings(), 2 * 86400))

    app.get("/admin", status=403)
    assert "Login with GitHub" in app.get("/c2c").text


def test_tampered_login_cookie_is_refused(make, github):
    """A login cookie whose claims, key or algorithm were changed is refused with 403."""
    import base64
    import json

    github.add_user("alice", "admin")
    app = make()
    _login(app)
    assert app.get("/admin").json == {"ok": True}
    header, _payload, signature = app.cookies[_COOKIE].split(".")
    claims = jwt.decode(app.cookies[_COOKIE], options={"verify_signature": False})
    longer = json.dumps({**claims, "exp": claims["exp"] + 10 * 365 * 86400}).encode()
    forged = base64.urlsafe_b64encode(longer).decode().rstrip("=")

    for value in (
        f"{header}.{forged}.{signature}",
        jwt.encode(claims, "another-key-of-32-bytes-or-more-xx", algorithm="HS256"),
        jwt.encode(claims, key=None, algorithm="none"),
    ):
        app.set_cookie(_COOKIE, value)
        app.get("/admin", status=403)


@pytest.mark.parametrize(
    "came_from",
    [
        "https://evil.example/",
        "//evil.example/c2c",
        "/\\evil.example",
        "http://localhost@evil.example/",
        "javascript:alert(1)",
        "https://localhost/c2c",  # another scheme is another origin
    ],
)
def test_foreign_came_from_is_refused(make, github, came_from):
    """``came_from`` must be same-origin: anything else answers 400 on login, callback and logout."""
    github.add_user("alice", "admin")
    app = make()

    for path in ("/c2c/github-login", "/c2c/github-callback", "/c2c/github-logout"):
        response = app.get(path, params={"came_from": came_from}, status=400)
        assert "came_from" in response.json["message"]


def test_relative_came_from(make, github):
    """An absolute path is a valid ``came_from``."""
    github.add_user("alice", "admin")
    app = make()

    assert _login(app, came_from="/c2c?x=1").location == "http://localhost/c2c?x=1"


def test_logout_clears_the_cookies(make, github):
    """Logout deletes the login and secret cookies and goes back to ``came_from``."""
    github.add_user("alice", "admin")
    app = make()
    _login(app)
    app.get("/admin")

    response = app.get("/c2c/github-logout", params={"came_from": "/c2c"}, status=302)

    assert response.location == "http://localhost/c2c"
    for name in (_COOKIE, "C2C_SECRET"):
        assert "max-age=0" in _set_cookie(response, name).lower()
    assert _COOKIE not in app.cookies
    app.get("/admin", status=403)
    assert "Login with GitHub" in app.get("/c2c").text


def test_oauth_error_is_reported(make, github):
    """An OAuth error sent back by GitHub (user refused) answers 401 with the OAuth parameters."""
    app = make()

    params = {"error": "access_denied", "error_description": "no", "x": "y"}
    response = app.get("/c2c/github-callback", params=params, status=401)

    assert response.json == {"error": "access_denied", "error_description": "no"}


def test_bad_code_is_refused(make, github):
    """A code GitHub does not accept answers 403, without a login cookie."""
    github.add_user("alice", "admin")
    app = make()
    callback = _authorize(app)
    query = _query(callback)

    app.get("/c2c/github-callback", params={**query, "code": "wrong"}, status=403)
    assert _COOKIE not in app.cookies


def test_login_through_the_redirect_proxy(make, github):
    """With a proxy URL, GitHub redirects to the proxy, which forwards to the callback."""
    github.add_user("alice", "admin")
    app = make({"c2c.auth.github.auth.proxy_url": f"{github.url}/proxy?app=1"})
    response = app.get("/c2c/github-login", params={"came_from": _INDEX}, status=302)
    redirect_uri = _query(response.location)["redirect_uri"]
    callback = urllib.parse.quote("http://localhost/c2c/github-callback", safe="")
    assert redirect_uri.startswith(f"{github.url}/proxy?app=1&came_from={callback}")

    location = requests.get(response.location, allow_redirects=False, timeout=5).headers["Location"]
    location = requests.get(location, allow_redirects=False, timeout=5).headers["Location"]

    assert app.get(location.removeprefix("http://localhost"), status=302).location == _INDEX
    assert app.get("/admin").json == {"ok": True}


def test_configured_callback_url_ignores_the_host_header(make, github):
    """With ``C2C_AUTH_GITHUB_CALLBACK_URL``, a spoofed ``Host`` does not change the redirect URI."""
    app = make({"c2c.auth.github.callback_url": "https://admin.example.com/c2c/github-callback"})

    params = {"came_from": "https://admin.example.com/c2c"}
    response = app.get("/c2c/github-login", params=params, headers={"Host": "evil.example"})

    redirect_uri = _query(response.location)["redirect_uri"]
    assert redirect_uri.startswith("https://admin.example.com/c2c/github-callback?came_from=")


def test_cookies_are_secure_on_https(make, github):
    """On HTTPS, the state cookie is ``Secure``."""
    app = make()

    response = app.get("/c2c/github-login", extra_environ={"wsgi.url_scheme": "https"}, status=302)

    attributes = [part.strip().lower() for part in _set_cookie(response, "c2c-auth-jwt-state").split(";")]
    assert {"secure", "httponly", "samesite=lax"} <= set(attributes)


def test_github_unreachable_denies_access(make, github):
    """When GitHub cannot be reached for the permission, access is denied (and not cached)."""
    app = make({"c2c.auth.github.repo_url": "http://127.0.0.1:9/repos", "c2c.auth.github.timeout": "1"})
    app.set_cookie(_COOKIE, _past_login(github.settings(), 0))

    app.get("/admin", status=403)


def test_user_name_is_escaped(make, github):
    """The GitHub display name is HTML-escaped on the index page."""
    github.add_user("alice", "admin", name="<script>alert(1)</script>")
    app = make()
    _login(app)

    page = app.get("/c2c").text

    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)" in page


def test_invalid_access_type(make):
    """An unknown access type is a configuration error."""
    with pytest.raises(ConfigurationError, match="ACCESS_TYPE"):
        make({"c2c.auth.github.access_type": "write"})


def test_secret_mode_has_no_github_routes(app_factory):
    """In SECRET mode the GitHub routes do not exist."""
    app = app_factory({"c2c.secret": "a-secret-value"}, includes=_INCLUDES)

    app.get("/c2c/github-login", status=404)


def test_permission_cache_is_bounded_and_expires():
    """The permission cache keeps at most its size in entries, and forgets them after its time."""
    cache = _github_auth._TTLCache(ttl=60, max_entries=2)
    for name in ("a", "b", "c"):
        cache.put((name,), {"pull": True})

    assert cache.get(("a",)) is None
    assert cache.get(("b",)) == {"pull": True}
    assert cache.get(("c",)) == {"pull": True}

    short = _github_auth._TTLCache(ttl=0.01, max_entries=2)
    short.put(("a",), {"pull": True})
    time.sleep(0.05)
    assert short.get(("a",)) is None


def test_callback_edge_cases(make, github):
    """Without ``came_from`` the callback goes to the index; a missing code is a 400."""
    github.add_user("alice", "admin")
    app = make()
    login = app.get("/c2c/github-login", status=302)
    app.get("/c2c/github-callback", params={"state": _query(login.location)["state"]}, status=400)

    answer = requests.get(app.get("/c2c/github-login").location, allow_redirects=False, timeout=5)
    assert app.get(answer.headers["Location"].removeprefix("http://localhost")).location == _INDEX


def test_github_user_api_unreachable(make, github):
    """When the user cannot be fetched from GitHub, the callback answers 502 and sets no login."""
    github.add_user("alice", "admin")
    app = make({"c2c.auth.github.user_url": "http://127.0.0.1:9/user", "c2c.auth.github.timeout": "1"})

    response = app.get(_authorize(app), status=502)

    assert "GitHub" in response.json["message"]
    assert _COOKIE not in app.cookies


def test_bad_signed_state_cookie(make, github):
    """A state cookie that was not signed by the application is refused."""
    github.add_user("alice", "admin")
    app = make()
    callback = _authorize(app)
    app.set_cookie("c2c-auth-jwt-state", "forged.cookie.value")

    app.get(callback, status=403)


def test_invalid_cookie_age(make):
    """A cookie lifetime that is not positive is a configuration error."""
    with pytest.raises(ConfigurationError, match="COOKIE_AGE"):
        make({"c2c.auth.github.auth.cookie_age": "0"})
