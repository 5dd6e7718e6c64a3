"""The GitHub OAuth views: ``{base}/github-login``, ``{base}/github-callback``, ``{base}/github-logout``.

- ``came_from`` (all three views) must be an absolute path (``/c2c``) or a URL of the request's
  own origin (or of the configured callback URL's origin); anything else answers **400**, before
  anything else is done (no open redirect).
- The OAuth ``state`` is kept in the Pyramid session (``C2C_USE_SESSION``), else in a signed,
  ``HttpOnly``, ``SameSite=Lax`` cookie valid 10 minutes; the callback answers **403** unless the
  ``state`` it receives is that one.
- The callback URL is ``C2C_AUTH_GITHUB_CALLBACK_URL`` when set, else built from the request
  (scheme and host after ``client_info``, trusted proxies only when ``C2C_TRUSTED_PROXIES`` is
  set). With ``C2C_AUTH_GITHUB_PROXY_URL``, GitHub redirects to
  ``<proxy>?came_from=<callback URL>``, and the proxy to the callback URL.
- An OAuth error reported by GitHub (``error`` parameter) answers **401** with the OAuth error
  parameters as JSON; a code GitHub refuses answers **403**; GitHub unreachable answers **502**.
"""

from __future__ import annotations

import hmac
import logging
import urllib.parse
from typing import Any

from c2cwsgiutils._auth_settings import SECRET_COOKIE
from c2cwsgiutils._github_auth import STATE_AGE, GitHubAuth

__all__ = ["register"]

_LOG = logging.getLogger("c2cwsgiutils.auth")
_SESSION_KEY = "oauth_state"
_OAUTH_ERROR_PARAMS = ("error", "error_description", "error_uri")


def _add_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _is_local(url: str, origins: set[str]) -> bool:
    # Browsers read a backslash as a slash ("/\\evil.example") and drop tabs and new lines.
    if "\\" in url or any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):  # noqa: PLR2004  # control characters
        return False
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme and not parts.netloc:
        return url.startswith("/") and not url.startswith("//")
    return parts.scheme in {"http", "https"} and _origin(url) in origins


class _Views:
    def __init__(self, github: GitHubAuth) -> None:
        self.github = github
        self.settings = github.settings

    def _came_from(self, request: Any) -> str | None:
        from pyramid.httpexceptions import HTTPBadRequest

        value = request.GET.get("came_from")
        if not value:
            return None
        allowed = {str(request.host_url).lower()}
        if self.settings.github_callback_url:
            allowed.add(_origin(self.settings.github_callback_url))
        if _is_local(str(value), allowed):
            return str(value)
        raise HTTPBadRequest("came_from must be an absolute path or a URL of this site")

    def _redirect_uri(self, request: Any, came_from: str | None) -> str:
        callback = self.settings.github_callback_url or str(request.route_url("c2c_github_callback"))
        if came_from:
            callback = _add_query(callback, came_from=came_from)
        if self.settings.github_proxy_url:
            return _add_query(self.settings.github_proxy_url, came_from=callback)
        return callback

    def _cookie(self, request: Any, response: Any, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=request.scheme == "https",
            httponly=True,
            samesite="Lax",  # the callback is a cross-site navigation from GitHub
        )

    def _back(self, request: Any, came_from: str | None) -> Any:
        from pyramid.httpexceptions import HTTPFound
        from pyramid.interfaces import IRoutesMapper

        if came_from is None:
            mapper = request.registry.queryUtility(IRoutesMapper)
            has_index = mapper is not None and mapper.get_route("c2c_index") is not None
            came_from = str(request.route_url("c2c_index") if has_index else request.application_url + "/")
        return HTTPFound(location=came_from)

    def login(self, request: Any) -> Any:
        from pyramid.httpexceptions import HTTPFound

        came_from = self._came_from(request)
        oauth = self.github.session(
            scope=self.settings.github_scope or None, redirect_uri=self._redirect_uri(request, came_from)
        )
        url, state = oauth.authorization_url(self.settings.github_auth_url)
        response = HTTPFound(location=url)
        if self.settings.use_session:
            request.session[_SESSION_KEY] = state
        else:
            self._cookie(
                request, response, self.github.state_cookie, self.github.sign_state(state), STATE_AGE
            )
        return response

    def _check_state(self, request: Any) -> None:
        from pyramid.httpexceptions import HTTPForbidden

        state = request.GET.get("state")
        if self.settings.use_session:
            expected = request.session.pop(_SESSION_KEY, None)
            valid = bool(expected and state and hmac.compare_digest(str(expected), str(state)))
        else:
            request.add_response_callback(self._delete_state)
            valid = self.github.check_state(request.cookies.get(self.github.state_cookie), state)
        if not valid:
            _LOG.warning("GitHub login refused: missing, expired or forged OAuth state")
            raise HTTPForbidden("Invalid or expired OAuth state: start the login again")

    def _delete_state(self, _request: Any, response: Any) -> None:
        response.delete_cookie(self.github.state_cookie, path="/")

    def callback(self, request: Any) -> Any:
        import requests
        from oauthlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]  # oauthlib ships no type hints
        from pyramid.httpexceptions import HTTPBadGateway, HTTPBadRequest, HTTPForbidden
        from pyramid.response import Response

        came_from = self._came_from(request)
        if "error" in request.GET:
            body = {name: request.GET[name] for name in _OAUTH_ERROR_PARAMS if name in request.GET}
            return Response(json_body=body, status=401)
        self._check_state(request)
        code = request.GET.get("code")
        if not code:
            raise HTTPBadRequest("Missing OAuth code")
        oauth = self.github.session(redirect_uri=self._redirect_uri(request, came_from))
        timeout = self.settings.github_timeout
        try:
            token = oauth.fetch_token(
                self.settings.github_token_url,
                code=code,
                client_secret=self.settings.github_client_secret,
                include_client_id=True,
                timeout=timeout,
            )
            user_response = oauth.get(self.settings.github_user_url, timeout=timeout)
            user_response.raise_for_status()
            user = user_response.json()
            login = str(user["login"])
        except OAuth2Error as error:
            _LOG.warning("GitHub refused the login: %s", error.error)
            raise HTTPForbidden("GitHub refused the login") from error
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            _LOG.warning("GitHub login failed: %s", error)
            raise HTTPBadGateway("Cannot get the user from GitHub") from error
        value = self.github.encode_login(
            login, str(user.get("name") or ""), str(user.get("html_url") or ""), str(token["access_token"])
        )
        _LOG.info("GitHub login of %s", login)
        response = self._back(request, came_from)
        self._cookie(
            request, response, self.settings.github_auth_cookie, value, self.settings.github_cookie_age
        )
        return response

    def logout(self, request: Any) -> Any:
        came_from = self._came_from(request)
        response = self._back(request, came_from)
        for name in (SECRET_COOKIE, self.settings.github_auth_cookie, self.github.state_cookie):
            response.delete_cookie(name, path="/")
        return response


def register(config: Any, github: GitHubAuth, base_path: str) -> None:
    """Add the routes and views ``c2c_github_login``, ``c2c_github_callback`` and ``c2c_github_logout``."""
    views = _Views(github)
    for name, path, view in (
        ("c2c_github_login", "/github-login", views.login),
        ("c2c_github_callback", "/github-callback", views.callback),
        ("c2c_github_logout", "/github-logout", views.logout),
    ):
        config.add_route(name, base_path + path, request_method="GET")
        config.add_view(view, route_name=name, http_cache=0)
