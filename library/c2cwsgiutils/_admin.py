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
