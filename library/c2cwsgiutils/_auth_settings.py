"""Names, settings and types of the authentication (re-exported by :mod:`c2cwsgiutils.auth`)."""

from __future__ import annotations

import enum
from typing import TypedDict

from c2cwsgiutils import _settings

COOKIE_AGE = 7 * 24 * 3600
"""Lifetime of the authentication cookie, in seconds (7 days)."""
SECRET_COOKIE = "C2C_SECRET"  # noqa: S105  # a cookie name, not a secret
"""Name of the cookie set after a successful login with the secret."""
SECRET_ENV = "C2C_SECRET"  # noqa: S105  # a setting name, not a secret
SECRET_PROP = "c2c.secret"  # noqa: S105  # a setting name, not a secret
GITHUB_REPOSITORY_ENV = "C2C_AUTH_GITHUB_REPOSITORY"
GITHUB_REPOSITORY_PROP = "c2c.auth.github.repository"
GITHUB_ACCESS_TYPE_ENV = "C2C_AUTH_GITHUB_ACCESS_TYPE"
GITHUB_ACCESS_TYPE_PROP = "c2c.auth.github.access_type"
GITHUB_CLIENT_ID_ENV = "C2C_AUTH_GITHUB_CLIENT_ID"
GITHUB_CLIENT_ID_PROP = "c2c.auth.github.client_id"
GITHUB_CLIENT_SECRET_ENV = "C2C_AUTH_GITHUB_CLIENT_SECRET"  # noqa: S105  # a setting name, not a secret
GITHUB_CLIENT_SECRET_PROP = "c2c.auth.github.client_secret"  # noqa: S105  # a setting name, not a secret
GITHUB_SCOPE_ENV = "C2C_AUTH_GITHUB_SCOPE"
GITHUB_SCOPE_PROP = "c2c.auth.github.scope"
GITHUB_AUTH_SECRET_ENV = "C2C_AUTH_GITHUB_SECRET"  # noqa: S105  # a setting name, not a secret
GITHUB_AUTH_SECRET_PROP = "c2c.auth.github.auth.secret"  # noqa: S105  # a setting name, not a secret
GITHUB_AUTH_COOKIE_ENV = "C2C_AUTH_GITHUB_COOKIE"
GITHUB_AUTH_COOKIE_PROP = "c2c.auth.github.auth.cookie"
GITHUB_AUTH_URL_ENV = "C2C_AUTH_GITHUB_AUTH_URL"
GITHUB_AUTH_URL_PROP = "c2c.auth.github.auth_url"
GITHUB_TOKEN_URL_ENV = "C2C_AUTH_GITHUB_TOKEN_URL"  # noqa: S105  # a setting name, not a secret
GITHUB_TOKEN_URL_PROP = "c2c.auth.github.token_url"  # noqa: S105  # a setting name, not a secret
GITHUB_USER_URL_ENV = "C2C_AUTH_GITHUB_USER_URL"
GITHUB_USER_URL_PROP = "c2c.auth.github.user_url"
GITHUB_REPO_URL_ENV = "C2C_AUTH_GITHUB_REPO_URL"
GITHUB_REPO_URL_PROP = "c2c.auth.github.repo_url"
GITHUB_AUTH_PROXY_URL_ENV = "C2C_AUTH_GITHUB_PROXY_URL"
GITHUB_AUTH_PROXY_URL_PROP = "c2c.auth.github.auth.proxy_url"
USE_SESSION_ENV = "C2C_USE_SESSION"
USE_SESSION_PROP = "c2c.use_session"
GITHUB_CALLBACK_URL_ENV = "C2C_AUTH_GITHUB_CALLBACK_URL"
GITHUB_CALLBACK_URL_PROP = "c2c.auth.github.callback_url"
GITHUB_COOKIE_AGE_ENV = "C2C_AUTH_GITHUB_COOKIE_AGE"
GITHUB_COOKIE_AGE_PROP = "c2c.auth.github.auth.cookie_age"
GITHUB_ACCESS_CACHE_SECONDS_ENV = "C2C_AUTH_GITHUB_ACCESS_CACHE_SECONDS"
GITHUB_ACCESS_CACHE_SECONDS_PROP = "c2c.auth.github.access_cache_seconds"
GITHUB_TIMEOUT_ENV = "C2C_AUTH_GITHUB_TIMEOUT"
GITHUB_TIMEOUT_PROP = "c2c.auth.github.timeout"
GITHUB_ACCESS_TYPES = ("pull", "triage", "push", "maintain", "admin")
"""The repository permissions GitHub reports (``permissions`` of ``/repos/{owner}/{repo}``)."""


class AuthenticationType(enum.Enum):
    """How the protected views authenticate their users."""

    NONE = 0
    """Nobody is authenticated."""
    SECRET = 1
    """A shared secret (``C2C_SECRET``)."""
    GITHUB = 2
    """A GitHub OAuth2 login."""


class AuthConfig(TypedDict, total=False):
    """Access rule of a protected resource (GitHub mode)."""

    github_repository: str | None
    github_access_type: str | None


class UserDetails(TypedDict, total=False):
    """The authenticated GitHub user (from the login cookie)."""

    login: str
    """GitHub login."""
    name: str
    """Display name (may be empty)."""
    url: str
    """Profile URL (``html_url``)."""
    token: str
    """GitHub access token, decrypted: it stays on the server (encrypted in the cookie)."""


@_settings.frozen_dataclass
class AuthSettings:
    """Settings of the GitHub authentication (the secret is ``CoreSettings.secret``)."""

    github_repository: str = _settings.knob(
        "", env=GITHUB_REPOSITORY_ENV, ini=GITHUB_REPOSITORY_PROP, doc="GitHub repository (owner/name)."
    )
    github_access_type: str = _settings.knob(
        "pull",
        env=GITHUB_ACCESS_TYPE_ENV,
        ini=GITHUB_ACCESS_TYPE_PROP,
        doc="Permission needed on the repository: pull, triage, push, maintain or admin "
        "(the reference README said `push`; the code default is `pull`).",
    )
    github_client_id: str = _settings.knob(
        "", env=GITHUB_CLIENT_ID_ENV, ini=GITHUB_CLIENT_ID_PROP, doc="GitHub OAuth application id."
    )
    github_client_secret: str = _settings.knob(
        "",
        env=GITHUB_CLIENT_SECRET_ENV,
        ini=GITHUB_CLIENT_SECRET_PROP,
        doc="GitHub OAuth application secret.",
    )
    github_scope: str = _settings.knob(
        "repo", env=GITHUB_SCOPE_ENV, ini=GITHUB_SCOPE_PROP, doc="OAuth scope."
    )
    github_auth_secret: str = _settings.knob(
        "",
        env=GITHUB_AUTH_SECRET_ENV,
        ini=GITHUB_AUTH_SECRET_PROP,
        doc="Key of the login cookie: signs it and encrypts the GitHub token (at least 16 characters).",
    )
    github_auth_cookie: str = _settings.knob(
        "c2c-auth-jwt", env=GITHUB_AUTH_COOKIE_ENV, ini=GITHUB_AUTH_COOKIE_PROP, doc="Login cookie name."
    )
    github_auth_url: str = _settings.knob(
        "https://github.com/login/oauth/authorize",
        env=GITHUB_AUTH_URL_ENV,
        ini=GITHUB_AUTH_URL_PROP,
        doc="GitHub authorization URL.",
    )
    github_token_url: str = _settings.knob(
        "https://github.com/login/oauth/access_token",
        env=GITHUB_TOKEN_URL_ENV,
        ini=GITHUB_TOKEN_URL_PROP,
        doc="GitHub token URL.",
    )
    github_user_url: str = _settings.knob(
        "https://api.github.com/user",
        env=GITHUB_USER_URL_ENV,
        ini=GITHUB_USER_URL_PROP,
        doc="GitHub user URL.",
    )
    github_repo_url: str = _settings.knob(
        "https://api.github.com/repos",
        env=GITHUB_REPO_URL_ENV,
        ini=GITHUB_REPO_URL_PROP,
        doc="GitHub repositories API URL.",
    )
    github_proxy_url: str = _settings.knob(
        "", env=GITHUB_AUTH_PROXY_URL_ENV, ini=GITHUB_AUTH_PROXY_URL_PROP, doc="OAuth redirect proxy URL."
    )
    use_session: bool = _settings.knob(
        False,
        env=USE_SESSION_ENV,
        ini=USE_SESSION_PROP,
        convert=_settings.as_bool,
        doc="Keep the OAuth state in the Pyramid session (else in a signed cookie).",
    )
    github_callback_url: str = _settings.knob(
        "",
        env=GITHUB_CALLBACK_URL_ENV,
        ini=GITHUB_CALLBACK_URL_PROP,
        doc="Public URL of the OAuth callback (`{base}/github-callback`); default: built from the "
        "request, so set it unless `C2C_TRUSTED_PROXIES` is set.",
    )
    github_cookie_age: int = _settings.knob(
        86400,
        env=GITHUB_COOKIE_AGE_ENV,
        ini=GITHUB_COOKIE_AGE_PROP,
        convert=int,
        doc="Lifetime of the GitHub login cookie, in seconds.",
    )
    github_access_cache_seconds: float = _settings.knob(
        120.0,
        env=GITHUB_ACCESS_CACHE_SECONDS_ENV,
        ini=GITHUB_ACCESS_CACHE_SECONDS_PROP,
        convert=float,
        doc="How long a user's repository permissions are cached, in seconds (0: no cache).",
    )
    github_timeout: float = _settings.knob(
        10.0,
        env=GITHUB_TIMEOUT_ENV,
        ini=GITHUB_TIMEOUT_PROP,
        convert=float,
        doc="Timeout of the calls to GitHub, in seconds.",
    )
