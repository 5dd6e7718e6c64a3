"""A headless Chromium logs in with GitHub (the fake one) through the index page, then logs out.

The application is served by a real waitress on 127.0.0.1, so the browser handles the cookies
(``SameSite=Lax``, ``HttpOnly``) and the redirects (application → GitHub → callback → index)
exactly as in production.
"""

import os

import _fake_github
import pytest

from c2cwsgiutils import auth, testing

_CHROMIUM = "/usr/bin/chromium"
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.server


def _admin(request):
    auth.auth_view(request)
    return {"admin": "ok"}


def _configure(config):
    config.add_route("admin", "/admin")
    config.add_view(_admin, route_name="admin", renderer="fast_json")


@pytest.fixture
def server(monkeypatch):
    """The application in GitHub mode, served by waitress; yields (base URL, fake GitHub)."""
    webtest_http = pytest.importorskip("webtest.http")
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    for github in _fake_github.serve():
        github.add_user("alice", "push", name="Alice <Liddell>")
        settings = {**github.settings(), "c2c.auth.github.access_type": "push"}
        app = testing.make_app(
            settings,
            includes=(
                "c2cwsgiutils.pretty_json",
                "c2cwsgiutils.auth",
                "c2cwsgiutils.errors",
                "c2cwsgiutils.index",
            ),
            configure=_configure,
        )
        # The socket listens once created: no need to wait for the serving thread.
        http = webtest_http.StopableWSGIServer.create(app, host="127.0.0.1")
        try:
            yield http.application_url.rstrip("/"), github
        finally:
            http.shutdown()


@pytest.fixture
def page():
    """A page of a fresh headless Chromium (the system one: no browser download)."""
    if not os.path.exists(_CHROMIUM):
        pytest.skip(f"{_CHROMIUM} is not installed (Debian package 'chromium')")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_CHROMIUM, headless=True, args=_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(_TIMEOUT_MS)
            yield context.new_page()
        finally:
            browser.close()


def test_login_and_logout_in_a_browser(server, page):
    """Clicking "Login with GitHub" comes back logged in; the admin view opens; Logout logs out."""
    base, github = server

    page.goto(f"{base}/c2c")
    page.get_by_text("Login with GitHub").click()
    page.wait_for_url(f"{base}/c2c")

    text = page.locator("body").inner_text()
    assert "Logged as" in text
    assert "Alice <Liddell>" in text  # escaped in the HTML, shown as text
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["c2c-auth-jwt"]["httpOnly"] is True
    assert cookies["c2c-auth-jwt"]["sameSite"] == "Lax"
    assert "c2c-auth-jwt-state" not in cookies  # used once by the callback, then deleted
    assert github.repo_requests == 1

    response = page.goto(f"{base}/admin")
    assert response is not None
    assert response.status == 200
    assert '"admin":"ok"' in page.content().replace(" ", "")

    page.goto(f"{base}/c2c")
    page.get_by_text("Logout").click()
    page.wait_for_url(f"{base}/c2c")

    assert page.get_by_text("Login with GitHub").is_visible()
    assert "c2c-auth-jwt" not in {cookie["name"] for cookie in page.context.cookies()}
    response = page.goto(f"{base}/admin")
    assert response is not None
    assert response.status == 403
