"""GitHub login: the login cookie, the OAuth state cookie and the repository permission cache.

The login cookie is an HS256 JWT with an ``exp`` claim. It carries the user's login, name and
profile URL in clear, and the GitHub access token encrypted with Fernet: the browser (and any
script or log that sees the cookie) cannot read the token. The JWT key, the Fernet key and the
state-cookie key are derived from ``C2C_AUTH_GITHUB_SECRET`` with HKDF-SHA256, each with its
own context, so none of them is the configured secret itself.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import logging
import threading
import time
from typing import Any

from itsdangerous import BadSignature, TimestampSigner

from c2cwsgiutils import _extras
from c2cwsgiutils._auth_settings import GITHUB_ACCESS_TYPES, AuthSettings, UserDetails

__all__ = ["STATE_AGE", "GitHubAuth"]

_LOG = logging.getLogger("c2cwsgiutils.auth")

STATE_AGE = 600
"""Lifetime of the OAuth state cookie, in seconds: the time a user has to log in on GitHub."""
_CAPABILITY = "The GitHub login (C2C_AUTH_GITHUB_*)"
_CACHE_MAX_ENTRIES = 1024
# GitHub's answers that mean "this token has no access to this repository": cached.
_NO_ACCESS_STATUSES = frozenset({401, 403, 404})


def _derive(secret: str, context: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(secret.encode("utf-8"))


class _TTLCache:
    """A small thread-safe cache: entries expire after ``ttl`` seconds, at most ``max_entries``."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: collections.OrderedDict[tuple[str, ...], tuple[float, dict[str, Any]]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple[str, ...], value: dict[str, Any]) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


class GitHubAuth:
    """Everything the GitHub login needs on the request path, built once per application."""

    def __init__(self, settings: AuthSettings) -> None:
        """Derive the keys and check the settings.

        Raises:
            pyramid.exceptions.ConfigurationError: a missing extra or an invalid setting.
        """
        from pyramid.exceptions import ConfigurationError

        self._jwt = _extras.require("jwt", "oauth2", _CAPABILITY)
        _extras.require("requests_oauthlib", "oauth2", _CAPABILITY)
        fernet = _extras.require("cryptography.fernet", "oauth2", _CAPABILITY)
        if settings.github_access_type not in GITHUB_ACCESS_TYPES:
            raise ConfigurationError(
                f"Invalid C2C_AUTH_GITHUB_ACCESS_TYPE {settings.github_access_type!r}: "
                f"expected one of {', '.join(GITHUB_ACCESS_TYPES)}"
            )
        if settings.github_cookie_age <= 0:
            raise ConfigurationError("C2C_AUTH_GITHUB_COOKIE_AGE must be positive")
        self.settings = settings
        self.state_cookie = settings.github_auth_cookie + "-state"
        secret = settings.github_auth_secret
        self._jwt_key = _derive(secret, b"c2cwsgiutils.auth.github.jwt.v1")
        self._fernet = fernet.Fernet(
            base64.urlsafe_b64encode(_derive(secret, b"c2cwsgiutils.auth.github.token.v1"))
        )
        self._state_signer = TimestampSigner(
            _derive(secret, b"c2cwsgiutils.auth.github.state.v1"),
            salt="c2cwsgiutils.auth.github.state",
            digest_method=hashlib.sha256,
        )
        self._cache = _TTLCache(settings.github_access_cache_seconds, _CACHE_MAX_ENTRIES)

    # The login cookie

    def encode_login(self, login: str, name: str, url: str, access_token: str) -> str:
        """Return the value of the login cookie of this user."""
        now = int(time.time())
        payload = {
            "login": login,
            "name": name,
            "url": url,
            "tok": self._fernet.encrypt(access_token.encode("utf-8")).decode("ascii"),
            "iat": now,
            "exp": now + self.settings.github_cookie_age,
        }
        return str(self._jwt.encode(payload, self._jwt_key, algorithm="HS256"))

    def decode_login(self, value: str) -> UserDetails | None:
        """Return the user of a login cookie, or ``None`` when it is invalid or expired."""
        from cryptography.fernet import InvalidToken

        try:
            payload = self._jwt.decode(
                value, self._jwt_key, algorithms=["HS256"], options={"require": ["exp", "iat"]}
            )
            token = self._fernet.decrypt(
                str(payload["tok"]).encode("ascii"), ttl=self.settings.github_cookie_age + 60
            ).decode("utf-8")
            return UserDetails(
                login=str(payload["login"]),
                name=str(payload.get("name") or ""),
                url=str(payload.get("url") or ""),
                token=token,
            )
        except self._jwt.ExpiredSignatureError:
            _LOG.info("Expired GitHub login cookie")
        except (self._jwt.InvalidTokenError, InvalidToken, KeyError, TypeError, ValueError):
            _LOG.warning("Invalid GitHub login cookie")
        return None

    # The OAuth state

    def sign_state(self, state: str) -> str:
        """Return the value of the state cookie holding ``state``."""
        return self._state_signer.sign(state.encode("utf-8")).decode("ascii")

    def check_state(self, cookie: str | None, state: str | None) -> bool:
        """Tell whether ``state`` is the one of the signed, unexpired state cookie."""
        if not cookie or not state:
            return False
        try:
            expected = self._state_signer.unsign(cookie, max_age=STATE_AGE)
        except BadSignature:  # also an expired cookie (SignatureExpired)
            return False
        return hmac.compare_digest(expected, state.encode("utf-8"))

    # The repository permission

    def has_access(self, user: UserDetails, repository: str, access_type: str) -> bool:
        """Tell whether ``user`` has the permission ``access_type`` on ``repository``.

        The permissions are asked to GitHub with the user's token and cached
        ``C2C_AUTH_GITHUB_ACCESS_CACHE_SECONDS`` per user, token and repository; a failure to
        reach GitHub denies the access and is not cached.
        """
        token = user.get("token", "")
        if not token or not repository:
            return False
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        key = (user.get("login", ""), digest, repository)
        permissions = self._cache.get(key)
        if permissions is None:
            permissions = self._fetch_permissions(token, repository)
            if permissions is None:
                return False
            self._cache.put(key, permissions)
        return permissions.get(access_type) is True

    def session(self, **kwargs: Any) -> Any:
        """Return a ``requests_oauthlib.OAuth2Session`` of the configured application."""
        from requests_oauthlib import OAuth2Session

        return OAuth2Session(self.settings.github_client_id, **kwargs)

    def _fetch_permissions(self, token: str, repository: str) -> dict[str, Any] | None:
        import requests
        from oauthlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]  # oauthlib ships no type hints

        url = f"{self.settings.github_repo_url.rstrip('/')}/{repository}"
        try:
            response = self.session(token={"access_token": token, "token_type": "Bearer"}).get(
                url, headers={"Accept": "application/vnd.github+json"}, timeout=self.settings.github_timeout
            )
            if response.status_code in _NO_ACCESS_STATUSES:
                return {}
            response.raise_for_status()
            permissions = response.json().get("permissions")
        except (requests.RequestException, OAuth2Error, ValueError, AttributeError) as error:
            _LOG.warning("Cannot get the permissions on the GitHub repository %s: %s", repository, error)
            return None
        return dict(permissions) if isinstance(permissions, dict) else {}
