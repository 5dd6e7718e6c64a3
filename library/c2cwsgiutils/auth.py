"""Authentication of the library's protected views: a shared secret, or a GitHub login.

The authentication type is chosen once per application (:func:`includeme`, or the first request):

1. ``C2C_SECRET`` / ``c2c.secret`` non-empty: :attr:`AuthenticationType.SECRET`;
2. else the GitHub client id, client secret and repository are set and ``C2C_AUTH_GITHUB_SECRET``
   has at least 16 characters: :attr:`AuthenticationType.GITHUB`;
3. else :attr:`AuthenticationType.NONE`: nobody is authenticated and protected views answer 403.

In SECRET mode the secret is taken from the ``secret`` parameter (query string or form body),
else from the ``X-API-Key`` header, and compared in constant time. A good secret sets the cookie
``C2C_SECRET``: a token signed with a key derived from the secret, valid :data:`COOKIE_AGE`
seconds from the login (it is not the secret, nor a hash of it; changing the secret revokes it),
``HttpOnly``, ``SameSite=Strict``, ``Secure`` on HTTPS, path ``/``. An empty secret logs out.
The result is computed once per request.

.. versionadded:: 6.0
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any, TypedDict

from itsdangerous import BadSignature, TimestampSigner

from c2cwsgiutils import _settings

__all__ = [
    "COOKIE_AGE",
    "GITHUB_ACCESS_TYPE_ENV",
    "GITHUB_ACCESS_TYPE_PROP",
    "GITHUB_AUTH_COOKIE_ENV",
    "GITHUB_AUTH_COOKIE_PROP",
    "GITHUB_AUTH_PROXY_URL_ENV",
    "GITHUB_AUTH_PROXY_URL_PROP",
    "GITHUB_AUTH_SECRET_ENV",
    "GITHUB_AUTH_SECRET_PROP",
    "GITHUB_AUTH_URL_ENV",
    "GITHUB_AUTH_URL_PROP",
    "GITHUB_CLIENT_ID_ENV",
    "GITHUB_CLIENT_ID_PROP",
    "GITHUB_CLIENT_SECRET_ENV",
    "GITHUB_CLIENT_SECRET_PROP",
    "GITHUB_REPOSITORY_ENV",
    "GITHUB_REPOSITORY_PROP",
    "GITHUB_REPO_URL_ENV",
    "GITHUB_REPO_URL_PROP",
    "GITHUB_SCOPE_ENV",
    "GITHUB_SCOPE_PROP",
    "GITHUB_TOKEN_URL_ENV",
    "GITHUB_TOKEN_URL_PROP",
    "GITHUB_USER_URL_ENV",
    "GITHUB_USER_URL_PROP",
    "SECRET_COOKIE",
    "SECRET_ENV",
    "SECRET_PROP",
    "USE_SESSION_ENV",
    "USE_SESSION_PROP",
    "AuthConfig",
    "AuthSettings",
    "AuthenticationType",
    "UserDetails",
    "auth_type",
    "auth_view",
    "check_access",
    "check_access_config",
    "get_expected_secret",
    "includeme",
    "is_auth",
    "is_auth_user",
    "is_enabled",
]

_LOG = logging.getLogger(__name__)

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

_FORBIDDEN_MESSAGE = "Missing or invalid secret (parameter, X-API-Key header or cookie)"
_MIN_GITHUB_SECRET_LENGTH = 16
# Context of the key derivation: the cookie key is never the secret itself.
_COOKIE_KEY_CONTEXT = b"c2cwsgiutils.auth.secret-cookie.v1"
_STATE_KEY = "c2cwsgiutils.auth.state"


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
    """The authenticated GitHub user."""

    login: str
    name: str
    url: str
    token: str


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    """Settings of the GitHub authentication (the secret is ``CoreSettings.secret``)."""

    github_repository: str = _settings.knob(
        "", env=GITHUB_REPOSITORY_ENV, ini=GITHUB_REPOSITORY_PROP, doc="GitHub repository (owner/name)."
    )
    github_access_type: str = _settings.knob(
        "pull",
        env=GITHUB_ACCESS_TYPE_ENV,
        ini=GITHUB_ACCESS_TYPE_PROP,
        doc="Permission needed on the repository: pull, push or admin.",
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
        doc="Key signing the login cookie (at least 16 characters).",
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
        doc="Keep the OAuth state in the Pyramid session.",
    )


@dataclasses.dataclass(frozen=True)
class _AuthState:
    """What the request path needs, computed once per application."""

    type: AuthenticationType
    secret: str
    signer: TimestampSigner | None


def _select_type(secret: str, github: AuthSettings) -> AuthenticationType:
    if secret:
        return AuthenticationType.SECRET
    if github.github_client_id and github.github_client_secret and github.github_repository:
        if len(github.github_auth_secret) >= _MIN_GITHUB_SECRET_LENGTH:
            return AuthenticationType.GITHUB
        _LOG.error(
            "GitHub authentication disabled: %s (%s) must be at least %d characters long",
            GITHUB_AUTH_SECRET_ENV,
            GITHUB_AUTH_SECRET_PROP,
            _MIN_GITHUB_SECRET_LENGTH,
        )
    return AuthenticationType.NONE


def _make_signer(secret: str) -> TimestampSigner:
    key = hmac.new(secret.encode("utf-8"), _COOKIE_KEY_CONTEXT, hashlib.sha256).digest()
    return TimestampSigner(
        key, salt="c2cwsgiutils.auth.cookie", key_derivation="hmac", digest_method=hashlib.sha256
    )


def _state(registry: Any) -> _AuthState:
    try:
        return registry[_STATE_KEY]  # type: ignore[no-any-return]
    except KeyError:
        pass
    secret = _settings.get(registry, _settings.CoreSettings).secret
    type_ = _select_type(secret, _settings.get(registry, AuthSettings))
    state = _AuthState(type_, secret, _make_signer(secret) if type_ is AuthenticationType.SECRET else None)
    registry[_STATE_KEY] = state
    return state


def auth_type(settings: Mapping[str, Any] | None) -> AuthenticationType:
    """Return the authentication type configured by ``settings`` and the environment.

    This reads the environment on each call: on the request path the library uses the type
    resolved once per application.

    Args:
        settings: the Pyramid settings.

    Returns:
        The authentication type.
    """
    secret = _settings.resolve(_settings.CoreSettings, settings).secret
    return _select_type(secret, _settings.resolve(AuthSettings, settings))


def get_expected_secret(request: Any) -> str:
    """Return the configured secret (``C2C_SECRET`` / ``c2c.secret``), empty when none is set."""
    return _state(request.registry).secret


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def _candidate(request: Any) -> str | None:
    try:
        value = request.params.get("secret")
    except ValueError:
        # An undecodable query string or body carries no usable secret (UnicodeDecodeError is a ValueError).
        value = None
    if value is None:
        value = request.headers.get("X-API-Key")
    return None if value is None else str(value)


def _set_cookie(token: str) -> Any:
    def callback(request: Any, response: Any) -> None:
        response.set_cookie(
            SECRET_COOKIE,
            token,
            max_age=COOKIE_AGE,
            path="/",
            secure=request.scheme == "https",
            httponly=True,
            samesite="Strict",
        )

    return callback


def _delete_cookie(_request: Any, response: Any) -> None:
    response.delete_cookie(SECRET_COOKIE, path="/")


def _cookie_auth(request: Any, signer: TimestampSigner) -> bool:
    cookie = request.cookies.get(SECRET_COOKIE)
    if cookie is None:
        return False
    if cookie == "":
        request.add_response_callback(_delete_cookie)
        return False
    try:
        signer.unsign(cookie, max_age=COOKIE_AGE)
    except BadSignature:  # also an expired token (SignatureExpired)
        return False
    # The cookie is not refreshed: it expires COOKIE_AGE after the login with the secret.
    return True


def _secret_auth(request: Any, state: _AuthState) -> bool:
    assert state.signer is not None
    candidate = _candidate(request)
    if candidate is None:
        return _cookie_auth(request, state.signer)
    if candidate == "":
        request.add_response_callback(_delete_cookie)
        return False
    if not hmac.compare_digest(_digest(candidate), _digest(state.secret)):
        return False
    request.add_response_callback(_set_cookie(state.signer.sign(b"c2c").decode("ascii")))
    return True


def _compute_auth_user(request: Any) -> tuple[bool, UserDetails | None]:
    state = _state(request.registry)
    if state.type is AuthenticationType.SECRET:
        return _secret_auth(request, state), None
    # TODO: GitHub login (F17, issue "GitHub OAuth2 login"): read and verify the login cookie here.
    return False, None


def is_auth_user(request: Any) -> tuple[bool, UserDetails | None]:
    """Tell whether the request is authenticated, and by which GitHub user.

    Computed once per request when :func:`includeme` was included.

    Args:
        request: the Pyramid request.

    Returns:
        ``(authenticated, user)``; ``user`` is ``None`` in SECRET mode.
    """
    if getattr(type(request), "c2c_auth_user", None) is not None:
        return request.c2c_auth_user  # type: ignore[no-any-return]
    return _compute_auth_user(request)


def is_auth(request: Any) -> bool:
    """Tell whether the request is authenticated (secret, or GitHub login)."""
    return is_auth_user(request)[0]


def auth_view(request: Any) -> None:
    """Raise ``HTTPForbidden`` (403) unless the request is authenticated.

    Args:
        request: the Pyramid request.

    Raises:
        pyramid.httpexceptions.HTTPForbidden: the request is not authenticated.
    """
    if not is_auth(request):
        from pyramid.httpexceptions import HTTPForbidden

        raise HTTPForbidden(_FORBIDDEN_MESSAGE)


def check_access(request: Any, repo: str | None = None, access_type: str | None = None) -> bool:
    """Tell whether the request may access a resource protected by a GitHub repository right.

    In SECRET mode, this is :func:`is_auth`.

    Args:
        request: the Pyramid request.
        repo: the repository (default: ``C2C_AUTH_GITHUB_REPOSITORY``).
        access_type: the permission needed (default: ``C2C_AUTH_GITHUB_ACCESS_TYPE``).

    Returns:
        Whether access is granted.
    """
    del repo, access_type  # TODO: used by the GitHub login (F17, issue "GitHub OAuth2 login").
    state = _state(request.registry)
    if state.type is AuthenticationType.SECRET:
        return is_auth(request)
    return False


def check_access_config(request: Any, auth_config: AuthConfig) -> bool:
    """Same as :func:`check_access`, with the repository and access type of ``auth_config``."""
    return check_access(request, auth_config.get("github_repository"), auth_config.get("github_access_type"))


def is_enabled(config: Any, env_name: str | None = None, config_name: str | None = None) -> bool:
    """Tell whether a protected feature is enabled by its flag (environment variable or ini key).

    Args:
        config: the Pyramid configurator.
        env_name: the environment variable of the flag.
        config_name: the ini key of the flag.

    Returns:
        Whether the flag is true.
    """
    return _settings.as_bool(_settings.lookup(config.get_settings(), env_name, config_name))


def includeme(config: Any) -> None:
    """Resolve the authentication settings once and add ``request.c2c_auth_user`` (reified)."""
    _state(config.registry)
    config.add_request_method(_compute_auth_user, "c2c_auth_user", reify=True)
