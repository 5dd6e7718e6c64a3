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

Guessing the secret is throttled per client address (``request.client_addr``, as
:mod:`c2cwsgiutils.client_info` resolves it from the trusted proxies), in each process: after
``C2C_AUTH_FAILURE_LIMIT`` wrong secrets, the client's secrets are not compared for a delay that
doubles with each further wrong one (see :class:`AuthFailureSettings`), and :func:`auth_view`
answers 429 with ``Retry-After``, even to the right secret. Other clients, and requests that
only carry the login cookie, are never delayed.

In GITHUB mode (needs the ``oauth2`` extra) the user logs in with ``{base}/github-login``
(see ``c2cwsgiutils._github_views`` for the flow, ``came_from`` and the OAuth ``state``). The
login cookie (``C2C_AUTH_GITHUB_COOKIE``) is a JWT that expires after
``C2C_AUTH_GITHUB_COOKIE_AGE`` seconds, ``HttpOnly``, ``SameSite=Lax``, ``Secure`` on HTTPS,
path ``/``, and holds the GitHub token encrypted. Unlike the reference implementation, every
protected view (:func:`auth_view`, :func:`is_auth`) requires the permission
``C2C_AUTH_GITHUB_ACCESS_TYPE`` on ``C2C_AUTH_GITHUB_REPOSITORY``, asked to GitHub and cached
``C2C_AUTH_GITHUB_ACCESS_CACHE_SECONDS``. The default access type is ``pull`` (as the
reference code; its README said ``push``): set ``push`` or ``admin`` to restrict the admin
views to the maintainers of the repository.

.. versionadded:: 6.0
.. versionchanged:: 6.2
   The GitHub login requires the repository permission on every protected view, verifies the
   OAuth state, expires, encrypts the token and refuses foreign ``came_from`` URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from c2cwsgiutils import _settings
from c2cwsgiutils._auth_settings import (  # the public names of this module
    COOKIE_AGE,
    GITHUB_ACCESS_CACHE_SECONDS_ENV,
    GITHUB_ACCESS_CACHE_SECONDS_PROP,
    GITHUB_ACCESS_TYPE_ENV,
    GITHUB_ACCESS_TYPE_PROP,
    GITHUB_ACCESS_TYPES,
    GITHUB_AUTH_COOKIE_ENV,
    GITHUB_AUTH_COOKIE_PROP,
    GITHUB_AUTH_PROXY_URL_ENV,
    GITHUB_AUTH_PROXY_URL_PROP,
    GITHUB_AUTH_SECRET_ENV,
    GITHUB_AUTH_SECRET_PROP,
    GITHUB_AUTH_URL_ENV,
    GITHUB_AUTH_URL_PROP,
    GITHUB_CALLBACK_URL_ENV,
    GITHUB_CALLBACK_URL_PROP,
    GITHUB_CLIENT_ID_ENV,
    GITHUB_CLIENT_ID_PROP,
    GITHUB_CLIENT_SECRET_ENV,
    GITHUB_CLIENT_SECRET_PROP,
    GITHUB_COOKIE_AGE_ENV,
    GITHUB_COOKIE_AGE_PROP,
    GITHUB_REPO_URL_ENV,
    GITHUB_REPO_URL_PROP,
    GITHUB_REPOSITORY_ENV,
    GITHUB_REPOSITORY_PROP,
    GITHUB_SCOPE_ENV,
    GITHUB_SCOPE_PROP,
    GITHUB_TIMEOUT_ENV,
    GITHUB_TIMEOUT_PROP,
    GITHUB_TOKEN_URL_ENV,
    GITHUB_TOKEN_URL_PROP,
    GITHUB_USER_URL_ENV,
    GITHUB_USER_URL_PROP,
    SECRET_COOKIE,
    SECRET_ENV,
    SECRET_PROP,
    USE_SESSION_ENV,
    USE_SESSION_PROP,
    AuthConfig,
    AuthenticationType,
    AuthFailureSettings,
    AuthSettings,
    FailureThrottle,
    UserDetails,
)
from c2cwsgiutils._redact import add_secret

if TYPE_CHECKING:  # imported when used: only a secret needs itsdangerous, only GITHUB mode the rest
    from itsdangerous import TimestampSigner

    from c2cwsgiutils._github_auth import GitHubAuth

__all__ = [
    "COOKIE_AGE",
    "GITHUB_ACCESS_CACHE_SECONDS_ENV",
    "GITHUB_ACCESS_CACHE_SECONDS_PROP",
    "GITHUB_ACCESS_TYPES",
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
    "GITHUB_CALLBACK_URL_ENV",
    "GITHUB_CALLBACK_URL_PROP",
    "GITHUB_CLIENT_ID_ENV",
    "GITHUB_CLIENT_ID_PROP",
    "GITHUB_CLIENT_SECRET_ENV",
    "GITHUB_CLIENT_SECRET_PROP",
    "GITHUB_COOKIE_AGE_ENV",
    "GITHUB_COOKIE_AGE_PROP",
    "GITHUB_REPOSITORY_ENV",
    "GITHUB_REPOSITORY_PROP",
    "GITHUB_REPO_URL_ENV",
    "GITHUB_REPO_URL_PROP",
    "GITHUB_SCOPE_ENV",
    "GITHUB_SCOPE_PROP",
    "GITHUB_TIMEOUT_ENV",
    "GITHUB_TIMEOUT_PROP",
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
    "AuthFailureSettings",
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

_FORBIDDEN_MESSAGE = "Missing or invalid secret (parameter, X-API-Key header or cookie)"
_MIN_GITHUB_SECRET_LENGTH = 16
# Context of the key derivation: the cookie key is never the secret itself.
_COOKIE_KEY_CONTEXT = b"c2cwsgiutils.auth.secret-cookie.v1"
_STATE_KEY = "c2cwsgiutils.auth.state"
_GITHUB_FORBIDDEN_MESSAGE = "Missing or invalid GitHub login, or missing permission on the repository"
_THROTTLED_MESSAGE = "Too many wrong secrets from this client address: retry in {} seconds"
# In the request's environ: the secret's verdict (counted once even when is_auth_user is not
# reified), and how long a throttled client must wait.
_VERDICT_KEY = "c2cwsgiutils.auth.verdict"
_RETRY_AFTER_KEY = "c2cwsgiutils.auth.retry_after"


@_settings.frozen_dataclass
class _AuthState:
    """What the request path needs, computed once per application."""

    type: AuthenticationType
    secret: str
    signer: TimestampSigner | None
    github: GitHubAuth | None = None
    throttle: FailureThrottle | None = None


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
    from itsdangerous import TimestampSigner

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
    github_settings = _settings.get(registry, AuthSettings)
    type_ = _select_type(secret, github_settings)
    github = None
    throttle = None
    if type_ is AuthenticationType.SECRET:
        add_secret(secret)  # masked in every log line of the process, in any spelling
        failure_settings = _settings.get(registry, AuthFailureSettings)
        if failure_settings.limit:
            throttle = FailureThrottle(failure_settings)
    elif type_ is AuthenticationType.GITHUB:
        from c2cwsgiutils._github_auth import GitHubAuth

        add_secret(github_settings.github_client_secret)
        add_secret(github_settings.github_auth_secret)
        github = GitHubAuth(github_settings)
    state = _AuthState(
        type_,
        secret,
        _make_signer(secret) if type_ is AuthenticationType.SECRET else None,
        github,
        throttle,
    )
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
    from itsdangerous import BadSignature  # imported by _make_signer already: a dictionary lookup

    try:
        signer.unsign(cookie, max_age=COOKIE_AGE)
    except BadSignature:  # also an expired token (SignatureExpired)
        return False
    # The cookie is not refreshed: it expires COOKIE_AGE after the login with the secret.
    return True


def _check_secret(request: Any, state: _AuthState, candidate: str) -> bool:
    environ = request.environ
    verdict = environ.get(_VERDICT_KEY)
    if verdict is not None:
        return bool(verdict)

    def compare() -> bool:
        return hmac.compare_digest(_digest(candidate), _digest(state.secret))

    if state.throttle is None:
        good = compare()
    else:
        good, wait = state.throttle.check(str(getattr(request, "client_addr", None) or ""), compare)
        if wait:
            environ[_RETRY_AFTER_KEY] = wait
    environ[_VERDICT_KEY] = good
    return good


def _secret_auth(request: Any, state: _AuthState) -> bool:
    assert state.signer is not None
    candidate = _candidate(request)
    if candidate is None:
        return _cookie_auth(request, state.signer)
    if candidate == "":
        request.add_response_callback(_delete_cookie)
        return False
    if not _check_secret(request, state, candidate):
        return False
    request.add_response_callback(_set_cookie(state.signer.sign(b"c2c").decode("ascii")))
    return True


def _compute_auth_user(request: Any) -> tuple[bool, UserDetails | None]:
    state = _state(request.registry)
    if state.type is AuthenticationType.SECRET:
        return _secret_auth(request, state), None
    if state.github is not None:
        cookie = request.cookies.get(state.github.settings.github_auth_cookie)
        user = state.github.decode_login(cookie) if cookie else None
        return user is not None, user
    return False, None


def is_auth_user(request: Any) -> tuple[bool, UserDetails | None]:
    """Tell whether the request is authenticated, and by which GitHub user.

    Computed once per request when :func:`includeme` was included. In GITHUB mode this is the
    identity only (a valid login cookie): the repository permission is checked by
    :func:`is_auth`, :func:`auth_view` and :func:`check_access`.

    Args:
        request: the Pyramid request.

    Returns:
        ``(authenticated, user)``; ``user`` is ``None`` in SECRET mode. ``user["token"]`` is the
        user's GitHub access token (decrypted, it never leaves the server).
    """
    if getattr(type(request), "c2c_auth_user", None) is not None:
        return request.c2c_auth_user  # type: ignore[no-any-return]
    return _compute_auth_user(request)


def is_auth(request: Any) -> bool:
    """Tell whether the request may use the protected views.

    SECRET mode: the secret (or its cookie) is valid. GITHUB mode: the user is logged in **and**
    has the configured permission on the configured repository (:func:`check_access`).
    """
    if _state(request.registry).type is AuthenticationType.GITHUB:
        return check_access(request)
    return is_auth_user(request)[0]


def auth_view(request: Any) -> None:
    """Raise ``HTTPForbidden`` (403) unless the request may use the protected views (:func:`is_auth`).

    Args:
        request: the Pyramid request.

    Raises:
        pyramid.httpexceptions.HTTPTooManyRequests: (429, with ``Retry-After``) the client sent
            too many wrong secrets lately; its secret was not checked.
        pyramid.httpexceptions.HTTPForbidden: the request is not authenticated, or (GITHUB mode)
            the user lacks the repository permission.
    """
    if not is_auth(request):
        from pyramid.httpexceptions import HTTPForbidden, HTTPTooManyRequests

        wait = request.environ.get(_RETRY_AFTER_KEY)
        if wait:
            seconds = max(1, math.ceil(wait))
            raise HTTPTooManyRequests(
                _THROTTLED_MESSAGE.format(seconds), headers={"Retry-After": str(seconds)}
            )

        github = _state(request.registry).type is AuthenticationType.GITHUB
        raise HTTPForbidden(_GITHUB_FORBIDDEN_MESSAGE if github else _FORBIDDEN_MESSAGE)


def check_access(request: Any, repo: str | None = None, access_type: str | None = None) -> bool:
    """Tell whether the request may access a resource protected by a GitHub repository right.

    In SECRET mode, this is :func:`is_auth`. In GITHUB mode, the user must be logged in and have
    the permission ``access_type`` on ``repo``, as GitHub reports it (cached
    ``C2C_AUTH_GITHUB_ACCESS_CACHE_SECONDS``).

    Args:
        request: the Pyramid request.
        repo: the repository (default: ``C2C_AUTH_GITHUB_REPOSITORY``).
        access_type: the permission needed (default: ``C2C_AUTH_GITHUB_ACCESS_TYPE``).

    Returns:
        Whether access is granted.
    """
    state = _state(request.registry)
    if state.type is AuthenticationType.SECRET:
        return is_auth_user(request)[0]
    if state.github is None:
        return False
    is_user, user = is_auth_user(request)
    if not is_user or user is None:
        return False
    settings = state.github.settings
    return state.github.has_access(
        user, repo or settings.github_repository, access_type or settings.github_access_type
    )


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
    value = _settings.lookup(config.get_settings(), env_name, config_name)
    try:
        return _settings.as_bool(value)
    except ValueError as error:
        from pyramid.exceptions import ConfigurationError

        names = " / ".join(name for name in (env_name, config_name) if name)
        raise ConfigurationError(f"Invalid value for {names}: {error}") from error


def includeme(config: Any) -> None:
    """Resolve the authentication settings once and add ``request.c2c_auth_user`` (reified).

    In GITHUB mode, also add the routes ``c2c_github_login`` (``{base}/github-login``),
    ``c2c_github_callback`` (``{base}/github-callback``) and ``c2c_github_logout``
    (``{base}/github-logout``).
    """
    state = _state(config.registry)
    config.add_request_method(_compute_auth_user, "c2c_auth_user", reify=True)
    if state.github is not None:
        from c2cwsgiutils import _github_views

        _github_views.register(
            config, state.github, _settings.get(config.registry, _settings.CoreSettings).base_path
        )
