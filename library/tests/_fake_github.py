"""A fake GitHub on 127.0.0.1: OAuth authorize redirect, token exchange, user and repository API.

It is a real HTTP server (``http.server`` in a thread), so the library talks to it through the
real ``requests-oauthlib`` client, configured with the ``C2C_AUTH_GITHUB_*_URL`` settings.
``/proxy`` plays the OAuth redirect proxy (``C2C_AUTH_GITHUB_PROXY_URL``).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"  # a test value
REPOSITORY = "camptocamp/c2cwsgiutils"


@dataclasses.dataclass
class User:
    """A GitHub user and their permissions per repository."""

    login: str
    name: str
    permissions: dict[str, dict[str, bool]]


def permissions(level: str) -> dict[str, bool]:
    """The ``permissions`` GitHub reports for a user with this role on a repository."""
    order = ["pull", "triage", "push", "maintain", "admin"]
    return {name: order.index(name) <= order.index(level) for name in order}


class FakeGitHub:
    """The state of the fake GitHub; ``url`` is its base URL once started."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.next_login = ""
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (login, redirect_uri)
        self.tokens: dict[str, str] = {}  # access token -> login
        self.repo_requests = 0
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"github": self}))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-github", daemon=True
        )

    def add_user(self, login: str, level: str, name: str | None = None) -> User:
        """Add a user with the role ``level`` on :data:`REPOSITORY`; they log in next."""
        user = User(login, name if name is not None else login.title(), {REPOSITORY: permissions(level)})
        self.users[login] = user
        self.next_login = login
        return user

    def settings(self) -> dict[str, str]:
        """The library's settings that point to this fake GitHub."""
        return {
            "c2c.auth.github.client_id": CLIENT_ID,
            "c2c.auth.github.client_secret": CLIENT_SECRET,
            "c2c.auth.github.repository": REPOSITORY,
            "c2c.auth.github.auth.secret": "a-signing-secret-of-the-tests",
            "c2c.auth.github.auth_url": f"{self.url}/login/oauth/authorize",
            "c2c.auth.github.token_url": f"{self.url}/login/oauth/access_token",
            "c2c.auth.github.user_url": f"{self.url}/user",
            "c2c.auth.github.repo_url": f"{self.url}/repos",
            "c2c.auth.github.timeout": "5",
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _redirect(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


class _Handler(BaseHTTPRequestHandler):
    github: FakeGitHub

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the stdlib's name
        """Keep the test output quiet."""

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _user(self) -> User | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in {"bearer", "token"}:
            return None
        login = self.github.tokens.get(token)
        return None if login is None else self.github.users.get(login)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/login/oauth/authorize":
            self._authorize(query)
        elif url.path == "/proxy":
            target = query.pop("came_from", "")
            self._send(302, headers={"Location": _redirect(target, **query)})
        elif url.path == "/user":
            self._user_api()
        elif url.path.startswith("/repos/"):
            self._repository(url.path.removeprefix("/repos/"))
        else:
            self._send(404, {"message": "Not Found"})

    def _authorize(self, query: dict[str, str]) -> None:
        if query.get("client_id") != CLIENT_ID or "redirect_uri" not in query:
            self._send(400, {"error": "invalid_request"})
            return
        code = secrets.token_hex(8)
        with self.github.lock:
            self.github.codes[code] = (self.github.next_login, query["redirect_uri"])
        location = _redirect(query["redirect_uri"], code=code, state=query.get("state", ""))
        self._send(302, headers={"Location": location})

    def _user_api(self) -> None:
        user = self._user()
        if user is None:
            self._send(401, {"message": "Bad credentials"})
            return
        self._send(
            200, {"login": user.login, "name": user.name, "html_url": f"https://github.com/{user.login}"}
        )

    def _repository(self, repository: str) -> None:
        with self.github.lock:
            self.github.repo_requests += 1
        user = self._user()
        if user is None:
            self._send(401, {"message": "Bad credentials"})
        elif repository not in user.permissions:
            self._send(404, {"message": "Not Found"})
        else:
            self._send(200, {"full_name": repository, "permissions": user.permissions[repository]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        if urllib.parse.urlsplit(self.path).path != "/login/oauth/access_token":
            self._send(404, {"message": "Not Found"})
            return
        with self.github.lock:
            login, redirect_uri = self.github.codes.pop(form.get("code", ""), ("", ""))
        # GitHub answers errors of the token exchange with a 200 and an "error" field.
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            self._send(200, {"error": "incorrect_client_credentials"})
        elif not login or form.get("redirect_uri") != redirect_uri:
            self._send(200, {"error": "bad_verification_code"})
        else:
            token = "gho_" + secrets.token_hex(16)
            self.github.tokens[token] = login
            self._send(200, {"access_token": token, "token_type": "bearer", "scope": "repo"})


def serve() -> Iterator[FakeGitHub]:
    """Start a fake GitHub, yield it, and stop it (for a pytest fixture)."""
    github = FakeGitHub()
    github.start()
    try:
        yield github
    finally:
        github.stop()
