from __future__ import annotations

import html.parser
import logging

import pytest
import requests
from _report_server import SECRET as REPORT_SECRET
from _report_server import serve
from markupsafe import Markup

from c2cwsgiutils import index, testing

SECRET = "a-test-secret"
INCLUDES = ("c2cwsgiutils.pretty_json", "c2cwsgiutils.auth", "c2cwsgiutils.index")
ADMIN_ROUTES = {
    "c2c_debug_stacks": "/debug/stacks",
    "c2c_debug_headers": "/debug/headers",
    "c2c_debug_memory_maps": "/debug/memory_maps",
    "c2c_debug_memory": "/debug/memory",
    "c2c_debug_show_refs": "/debug/show_refs.dot",
    "c2c_debug_memory_diff": "/debug/memory_diff",
    "c2c_debug_sleep": "/debug/sleep",
    "c2c_debug_time": "/debug/time",
    "c2c_debug_error": "/debug/error",
    "c2c_db_maintenance": "/db/maintenance",
    "c2c_logging_level": "/logging/level",
    "c2c_sql_profiler": "/sql_profiler",
}
PUBLIC_ROUTES = {"c2c_health_check": "/health_check", "c2c_versions": "/versions.json"}


def _routes(routes, base="/c2c"):
    """Register the given library routes (by their documented names) with a dummy view."""

    def configure(config):
        for name, path in routes.items():
            config.add_route(name, base + path)
            config.add_view(lambda _request: {}, route_name=name, renderer="json")

    return configure


@pytest.fixture
def index_app(app_factory):
    """Build an app with the index, a secret and the given library routes."""

    def build(settings=None, routes=None, **kwargs):
        settings = {"c2c.secret": SECRET, **(settings or {})}
        return app_factory(settings, includes=INCLUDES, configure=_routes(routes or {}), **kwargs)

    return build


class _Links(html.parser.HTMLParser):
    """Collect every URL-valued attribute of a page."""

    def __init__(self):
        super().__init__()
        self.urls = []
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls.extend(value for name, value in attrs if name in ("href", "src", "action"))


def _parse(text):
    parser = _Links()
    parser.feed(text)
    return parser


def test_page_and_headers(index_app):
    """``{base}`` and ``{base}/`` answer GET and POST with an uncached, self-contained HTML page."""
    app = index_app()
    for path in ("/c2c", "/c2c/"):
        response = app.get(path)
        assert response.content_type == "text/html"
        assert "<title>c2cwsgiutils tools</title>" in response.text
        assert "no-cache" in response.headers["Cache-Control"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "prefers-color-scheme:dark" in response.text
    assert app.post("/c2c").status_int == 200
    app.put("/c2c", status=404)


def test_not_registered_with_empty_base_path(app_factory):
    """With an empty base path, there is no index page, and the root stays the application's."""
    app = app_factory(
        {"c2c.base_path": "", "c2c.secret": SECRET},
        includes=INCLUDES,
        configure=_routes({"home": "/"}, base=""),
    )
    assert app.get("/").json == {}
    app.get("/c2c", status=404)


def test_sections_follow_registered_routes(index_app):
    """Health checks and Versions appear only when their routes exist (Versions: logged in, or public)."""
    assert "Health checks" not in index_app().get("/c2c").text
    assert "Versions" not in index_app().post("/c2c", {"secret": SECRET}).text
    app = index_app(routes=PUBLIC_ROUTES)
    text = app.get("/c2c").text
    assert "<h2>Health checks</h2>" in text
    assert 'action="http://localhost/c2c/health_check"' in text
    assert 'name="max_level" type="number" value="1"' in text
    assert "Versions" not in text  # versions.json needs the secret: no link that answers 403
    logged = app.post("/c2c", {"secret": SECRET}).text
    assert "<h2>Versions</h2>" in logged
    assert 'href="http://localhost/c2c/versions.json"' in logged
    public = index_app({"c2c.versions_public": "true"}, routes=PUBLIC_ROUTES).get("/c2c").text
    assert "<h2>Versions</h2>" in public
    assert 'href="http://localhost/c2c/versions.json"' in public


def test_admin_sections_need_authentication(index_app):
    """Debug, DB maintenance, Logging and SQL profiler are shown only once logged in, in order."""
    app = index_app(routes={**PUBLIC_ROUTES, **ADMIN_ROUTES})
    anonymous = app.get("/c2c").text
    for title in ("Debug", "DB maintenance", "Logging", "SQL profiler"):
        assert f"<h2>{title}</h2>" not in anonymous
    assert 'name="secret" type="password"' in anonymous
    assert "Login" in anonymous

    logged = app.post("/c2c", {"secret": SECRET})
    assert "C2C_SECRET" in logged.headers["Set-Cookie"]
    titles = [
        "Health checks",
        "Versions",
        "Debug",
        "DB maintenance",
        "Logging",
        "SQL profiler",
        "Authentication",
    ]
    positions = [logged.text.index(f"<h2>{title}</h2>") for title in titles]
    assert positions == sorted(positions)
    assert 'href="http://localhost/c2c/sql_profiler?enable=1"' in logged.text
    assert 'href="http://localhost/c2c/db/maintenance?readonly=true"' in logged.text
    assert 'action="http://localhost/c2c/debug/show_refs.dot"' in logged.text
    assert 'value="gunicorn.app.wsgiapp.WSGIApplication"' in logged.text
    assert 'name="secret" type="hidden" value=""' in logged.text
    assert "Logout" in logged.text

    # The cookie keeps the session; the logout form posts an empty secret.
    assert "<h2>Debug</h2>" in app.get("/c2c").text
    logged_out = app.post("/c2c", {"secret": ""})
    assert "<h2>Debug</h2>" not in logged_out.text
    assert "<h2>Debug</h2>" not in app.get("/c2c").text


def test_wrong_secret_shows_login_form(index_app):
    """A wrong secret does not authenticate, and the page still answers (no 403)."""
    response = index_app(routes=ADMIN_ROUTES).post("/c2c", {"secret": "wrong"})
    assert "<h2>Debug</h2>" not in response.text
    assert 'type="password"' in response.text


def test_partial_debug_routes(index_app):
    """Only the debug tools whose route exists are listed."""
    app = index_app(routes={"c2c_debug_stacks": "/debug/stacks"})
    text = app.post("/c2c", {"secret": SECRET}).text
    assert "Stack traces" in text
    assert "Object refs" not in text
    assert "Sleep" not in text


def test_no_external_resources(index_app):
    """Every link, form and resource of the page points to the application or is inline."""
    app = index_app(routes={**PUBLIC_ROUTES, **ADMIN_ROUTES})
    text = app.post("/c2c", {"secret": SECRET}, extra_environ={"HTTP_HOST": "app.example:8080"}).text
    page = _parse(text)
    assert "script" not in page.tags
    assert page.urls
    for url in page.urls:
        assert url.startswith(("http://app.example:8080/c2c", "data:image/svg+xml;base64,")), url
    assert "cdn" not in text.lower()


def test_links_follow_scheme_host_and_route_prefix(index_app):
    """Links are absolute, with the request's scheme and host and the app's route prefix."""
    app = index_app(routes={}, route_prefix="/api")
    response = app.get("/api/c2c", extra_environ={"HTTP_HOST": "app:8080", "wsgi.url_scheme": "https"})
    assert 'action="https://app:8080/api/c2c"' in response.text


def test_hostile_host_is_escaped(index_app):
    """A malicious Host header cannot inject markup in the page."""
    evil = 'x"><script>alert(1)</script>'
    text = index_app(routes=PUBLIC_ROUTES).get("/c2c", extra_environ={"HTTP_HOST": evil}).text
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert "script" not in _parse(text).tags


def test_extension_points(index_app, monkeypatch):
    """``additional_title`` and ``additional_noauth`` are shown to all, ``additional_auth`` once logged."""
    monkeypatch.setattr(index, "additional_title", "<h2>My tools</h2>")
    monkeypatch.setattr(index, "additional_noauth", [index.paragraph("public <tool>")])
    monkeypatch.setattr(index, "additional_auth", ["<p>secret tool</p>"])
    app = index_app()
    anonymous = app.get("/c2c").text
    assert "<h2>My tools</h2>" in anonymous
    assert "<p>public &lt;tool&gt;</p>" in anonymous
    assert "secret tool" not in anonymous
    assert "<p>secret tool</p>" in app.post("/c2c", {"secret": SECRET}).text


def test_secret_warning_only_with_secret():
    """The startup warning about the secret authentication is logged only when a secret is set."""
    with testing.capture_logs("c2cwsgiutils.index", logging.WARNING) as records:
        testing.make_app({}, includes=INCLUDES)
    assert not [r for r in records if r.levelno >= logging.WARNING]
    with testing.capture_logs("c2cwsgiutils.index", logging.WARNING) as records:
        testing.make_app({"c2c.secret": SECRET}, includes=INCLUDES)
    assert any("less safe than the GitHub" in r.getMessage() for r in records)


def test_no_authentication_section_without_auth(app_factory):
    """Without any authentication configured, there is neither login form nor admin section."""
    app = app_factory({}, includes=INCLUDES, configure=_routes(ADMIN_ROUTES))
    text = app.post("/c2c", {"secret": "anything"}).text
    assert "Authentication" not in text
    assert "<h2>Debug</h2>" not in text


GITHUB_SETTINGS = {
    "c2c.auth.github.repository": "camptocamp/c2cwsgiutils",
    "c2c.auth.github.client_id": "client-id",
    "c2c.auth.github.client_secret": "client-secret",
    "c2c.auth.github.auth.secret": "0123456789abcdef-github",
}


def test_github_login_link(app_factory):
    """In GitHub mode, the page links to the login route, coming back to the index."""
    routes = {"c2c_github_login": "/github-login", "c2c_github_logout": "/github-logout"}
    app = app_factory(GITHUB_SETTINGS, includes=INCLUDES, configure=_routes(routes))
    text = app.get("/c2c").text
    assert "Login with GitHub" in text
    assert 'href="http://localhost/c2c/github-login?came_from=http%3A%2F%2Flocalhost%2Fc2c"' in text
    assert 'type="password"' not in text


def test_github_without_login_route(app_factory):
    """In GitHub mode without the login route registered, no broken link is shown."""
    # ``auth`` registers the GitHub routes: without it, the page has no login route to link to.
    text = (
        app_factory(GITHUB_SETTINGS, includes=("c2cwsgiutils.pretty_json", "c2cwsgiutils.index"))
        .get("/c2c")
        .text
    )
    assert "Login with GitHub" not in text


def test_helpers_escape_text_and_keep_markup():
    """The HTML helpers escape plain strings and keep Markup as is."""
    evil = "<script>alert('x')</script>"
    assert index.section(evil, evil, sep=False) == Markup(
        "<section><h2>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</h2>"
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</section>"
    )
    assert index.section("T", Markup("<b>ok</b>")).endswith("<b>ok</b></section><hr>")
    assert index.paragraph("a", Markup("<i>b</i>"), title="<T>") == Markup(
        "<p><strong>&lt;T&gt;:</strong> a<i>b</i></p>"
    )
    assert index.button("<Go>") == Markup('<button class="btn btn-primary" type="submit">&lt;Go&gt;</button>')


def test_link_and_form_helpers():
    """Links and forms escape their URL, and refuse script URLs."""
    link = index.link('https://x/?a=1&b="2"', "Go")
    assert link == Markup(
        '<a class="btn btn-primary" href="https://x/?a=1&amp;b=&#34;2&#34;" target="_blank" '
        'rel="noopener noreferrer">Go</a>'
    )
    assert 'href="#"' in index.link("javascript:alert(1)", "x")
    assert 'href="#"' in index.link(" JavaScript:alert(1)", "x")
    assert 'href="#"' in index.link("http://[broken", "x")
    assert 'target="_self">' in index.link("/a", "x", cssclass="", target="_self")
    form = index.form("/run", index.input_("name", value="<v>"), index.button("Run"), method="post")
    assert form.startswith('<form action="/run" method="post" target="_blank">')
    assert 'value="&lt;v&gt;"' in form
    assert 'action="#"' in index.form("data:text/html,<b>", "x")


def test_input_helper_defaults():
    """``input_`` infers the label and the type, and hidden inputs have no label."""
    assert index.input_("max_depth", value=3) == Markup(
        '<label>Max depth <input name="max_depth" type="number" value="3"></label>'
    )
    assert index.input_("name", label="Logger") == Markup(
        '<label>Logger <input name="name" type="text" value=""></label>'
    )
    assert index.input_("secret", type_="hidden") == Markup('<input name="secret" type="hidden" value="">')


def test_github_user_is_escaped(app_factory, monkeypatch):
    """The GitHub user's name and URL cannot inject markup or a script URL in the page."""
    from c2cwsgiutils import auth

    user = {"login": "evil", "name": "<img src=x onerror=alert(1)>", "url": "javascript:alert(1)"}
    monkeypatch.setattr(auth, "is_auth_user", lambda _request: (True, user))
    routes = {"c2c_github_login": "/github-login", "c2c_github_logout": "/github-logout"}
    text = app_factory(GITHUB_SETTINGS, includes=INCLUDES, configure=_routes(routes)).get("/c2c").text
    assert "<img" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "javascript:" not in text
    assert 'href="http://localhost/c2c/github-logout?came_from=http%3A%2F%2Flocalhost%2Fc2c"' in text
    assert "Logged as" in text


def test_markup_url_is_trusted():
    """A URL given as Markup is the caller's responsibility and is kept as is."""
    assert 'href="/a?b=1&amp;c=2"' in index.link(Markup("/a?b=1&amp;c=2"), "x")


def test_links_behind_a_proxy(app_factory):
    """With the whole library, links follow the proxy's scheme and host and the route prefix."""
    app = app_factory({"c2c.secret": SECRET}, includes=("c2cwsgiutils.pyramid",), route_prefix="/api")
    text = app.get("/api/c2c", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app:8080"}).text
    assert 'action="https://app:8080/api/c2c"' in text


def test_health_check_form_works(app_factory):
    """Submitting the health check form of the page runs the health checks."""
    from c2cwsgiutils.health_check import HealthCheck

    def configure(config):
        HealthCheck(config).add_custom_check("answer", lambda _request: 42)

    app = app_factory({"c2c.health_check.public_details": "true"}, includes=INCLUDES, configure=configure)
    page = app.get("/c2c")
    form = page.forms[0]
    assert form.action == "http://localhost/c2c/health_check"
    result = form.submit()
    assert result.json["successes"]["answer"]["result"] == 42


def test_login_and_logout_forms_work(index_app):
    """Filling the page's login form logs in; submitting its logout form logs out."""
    app = index_app(routes=ADMIN_ROUTES)
    page = app.get("/c2c")
    login = page.forms[len(page.forms) - 1]
    login["secret"] = SECRET
    logged = login.submit()
    assert "<h2>Debug</h2>" in logged.text
    logged_out = logged.forms[len(logged.forms) - 1].submit()
    assert "<h2>Debug</h2>" not in logged_out.text
    assert 'type="password"' in logged_out.text


@pytest.mark.server
def test_extension_points_through_gunicorn(tmp_path):
    """Through gunicorn, the snippets an application adds to ``index.additional_*`` are on the page."""
    pytest.importorskip("gunicorn")
    with serve(tmp_path) as url:
        anonymous = requests.get(url + "/c2c", timeout=30)
        logged = requests.get(url + "/c2c/", headers={"X-API-Key": REPORT_SECRET}, timeout=30)
    assert anonymous.status_code == 200
    assert '<h2 id="app-title">Application tools</h2>' in anonymous.text
    assert '<p id="app-public">public tool</p>' in anonymous.text
    assert "admin tool" not in anonymous.text
    assert "<h2>Versions</h2>" not in anonymous.text
    assert logged.status_code == 200
    title = logged.text.index('<h2 id="app-title">Application tools</h2>')
    admin = logged.text.index('<p id="app-admin">admin tool</p>')
    public = logged.text.index('<p id="app-public">public tool</p>')
    assert logged.text.index("<h2>Versions</h2>") < title < admin < public < logged.text.index("Logout")
