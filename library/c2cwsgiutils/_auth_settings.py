"""Names, settings and types of the authentication (re-exported by :mod:`c2cwsgiutils.auth`).

Also the throttle of wrong secrets (:class:`FailureThrottle`) with its settings: the state of the
secret check that :mod:`c2cwsgiutils.auth` keeps per application.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
from collections.abc import Callable
from typing import TypedDict

from c2cwsgiutils import _settings

_LOG = logging.getLogger("c2cwsgiutils.auth")

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


def _non_negative_int(value: object) -> int:
    number = int(str(value))
    if number < 0:
        raise ValueError(f"{number} is negative")
    return number


def _positive_int(value: object) -> int:
    number = int(str(value))
    if number < 1:
        raise ValueError(f"{number} is not 1 or more")
    return number


def _non_negative_float(value: object) -> float:
    number = float(str(value))
    if not number >= 0:  # also NaN
        raise ValueError(f"{number} is not a number of seconds, 0 or more")
    return number


@_settings.frozen_dataclass
class AuthFailureSettings:
    """Settings of the throttle of wrong secrets (per client address and per process)."""

    limit: int = _settings.knob(
        5,
        env="C2C_AUTH_FAILURE_LIMIT",
        ini="c2c.auth.failure_limit",
        convert=_non_negative_int,
        doc="Wrong secrets a client address may send before it is answered 429 with `Retry-After` "
        "(0: no throttling).",
    )
    delay: float = _settings.knob(
        1.0,
        env="C2C_AUTH_FAILURE_DELAY",
        ini="c2c.auth.failure_delay",
        convert=_non_negative_float,
        doc="Seconds of 429 after the last allowed wrong secret; doubled by each further one.",
    )
    max_delay: float = _settings.knob(
        300.0,
        env="C2C_AUTH_FAILURE_MAX_DELAY",
        ini="c2c.auth.failure_max_delay",
        convert=_non_negative_float,
        doc="Longest 429 delay after a wrong secret, in seconds.",
    )
    expiry: float = _settings.knob(
        900.0,
        env="C2C_AUTH_FAILURE_EXPIRY",
        ini="c2c.auth.failure_expiry",
        convert=_non_negative_float,
        doc="Seconds without a wrong secret (and past its delay) after which a client address's "
        "wrong secrets are forgotten.",
    )
    max_clients: int = _settings.knob(
        10000,
        env="C2C_AUTH_FAILURE_MAX_CLIENTS",
        ini="c2c.auth.failure_max_clients",
        convert=_positive_int,
        doc="Client addresses whose wrong secrets are remembered, per process; past that, the "
        "least recently seen is forgotten.",
    )


class _Client:
    __slots__ = ("failures", "last", "until")

    def __init__(self) -> None:
        self.failures = 0
        self.last = 0.0  # time of the last wrong secret
        self.until = 0.0  # end of the 429 delay


class FailureThrottle:
    """Count the wrong secrets of each client address; answer 429 for a growing delay past a limit.

    After ``limit`` wrong secrets, a client address gets ``delay`` seconds during which its secret
    is not even compared (the right one included: else guessing would go on at full speed, the
    429 telling the wrong guesses from the right one); each further wrong secret doubles the
    delay, up to ``max_delay``. A right secret forgets the client's failures. The failures of a
    client are forgotten ``expiry`` seconds after its last one (and not before its delay ends).
    At most ``max_clients`` addresses are remembered, the least recently seen forgotten first: an
    attacker who evicts its own entry with many addresses had those addresses' free tries anyway.
    Thread-safe; one per application, so per process.

    Args:
        settings: the limits.
        clock: the monotonic clock, in seconds.
    """

    def __init__(self, settings: AuthFailureSettings, clock: Callable[[], float] = time.monotonic) -> None:
        """Remember no client yet."""
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: collections.OrderedDict[str, _Client] = collections.OrderedDict()

    def __len__(self) -> int:
        """The number of client addresses remembered."""
        return len(self._clients)

    def _expired(self, client: _Client, now: float) -> bool:
        return now >= client.until and now - client.last >= self._settings.expiry

    def check(self, address: str, compare: Callable[[], bool]) -> tuple[bool, float]:
        """Compare a secret sent by ``address`` (``compare()``) unless the address must wait.

        Returns:
            ``(True, 0)`` for a right secret, ``(False, 0)`` for a wrong one, and
            ``(False, seconds)`` when ``address`` must wait that long: its secret was not compared.
        """
        with self._lock:
            client = self._clients.get(address)
            if client is not None:
                now = self._clock()
                if client.until > now:
                    self._clients.move_to_end(address)
                    return False, client.until - now
                if self._expired(client, now):
                    del self._clients[address]
        if compare():
            with self._lock:
                self._clients.pop(address, None)
            return True, 0.0
        self._failed(address)
        return False, 0.0

    def _failed(self, address: str) -> None:
        settings = self._settings
        with self._lock:
            now = self._clock()
            client = self._clients.get(address)
            if client is None or self._expired(client, now):
                client = self._clients[address] = _Client()
            self._clients.move_to_end(address)
            client.failures += 1
            client.last = now
            extra = client.failures - settings.limit
            delay = 0.0
            if extra >= 0:
                delay = min(settings.delay * 2.0 ** min(extra, 64), settings.max_delay)
                client.until = now + delay
            while len(self._clients) > settings.max_clients:
                self._clients.popitem(last=False)
        if delay:
            _LOG.warning(
                "%d wrong secrets from the client address %s: it is answered 429 for %.0f seconds",
                client.failures,
                address or "(unknown)",
                delay,
            )
