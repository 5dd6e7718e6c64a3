"""Registration of the administration views (JSON, no-cache, GET, under the base path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from c2cwsgiutils import _settings


def add_admin_view(
    config: Any,
    route_name: str,
    path: str,
    view: Callable[[Any], Any],
    *,
    channel: str | None = None,
    receiver: Callable[..., Any] | None = None,
) -> None:
    """Add ``GET {base}{path}`` rendered with ``fast_json``; subscribe ``receiver`` to ``channel``.

    The view itself calls ``auth.auth_view(request)`` when it needs the secret.
    """
    if channel is not None and receiver is not None:
        from c2cwsgiutils import broadcast

        config.include("c2cwsgiutils.broadcast")
        broadcast.subscribe(channel, receiver)
    base_path = _settings.get(config.registry, _settings.CoreSettings).base_path
    config.add_route(route_name, base_path + path, request_method="GET")
    config.add_view(view, route_name=route_name, renderer="fast_json", http_cache=0)


def bad_request(message: str) -> Exception:
    """A 400 whose body is JSON (``status``, ``message``), with or without the library's error views."""
    from pyramid.httpexceptions import HTTPBadRequest

    body = {"status": 400, "message": message}
    return HTTPBadRequest(message, json_body=body, content_type="application/json")  # type: ignore[no-any-return]


def bool_param(request: Any, name: str, *, flag: bool = False) -> bool | None:
    """The boolean query parameter ``name`` (the words of ``_settings.as_bool``); ``None`` when absent.

    With ``flag``, a parameter without a value (``?backrefs``) is true. Any other word is a JSON 400.
    """
    value = request.params.get(name)
    if value is None:
        return None
    if flag and not value.strip():
        return True
    if value.strip():
        try:
            return _settings.as_bool(value)
        except ValueError:
            pass
    raise bad_request(f"Invalid {name} value: {value!r} (true or false expected)")
