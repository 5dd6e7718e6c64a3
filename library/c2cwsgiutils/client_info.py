"""Proxy headers: the client address, host and scheme a request had before the reverse proxies.

Put the WSGI filter in the pipeline (``egg:c2cwsgiutils#client_info``) or include this module
(``config.include("c2cwsgiutils.client_info")``, done by ``c2cwsgiutils.pyramid``), and
``request.client_addr``, ``request.host``, ``request.scheme`` and the generated URLs describe
what the client used.

Rules, per request:

- With a ``Forwarded`` header (RFC 7239: quoted strings, case-insensitive parameter names,
  ``for="[2001:db8::1]:4711"``), its element for the client gives ``for`` → ``REMOTE_ADDR``
  (without the port), ``by`` → ``SERVER_NAME``, ``host`` → ``HTTP_HOST`` and ``proto`` →
  ``wsgi.url_scheme``. A copy of the header is kept in ``HTTP_ORIGINAL_FORWARDED``, and the
  ``X-Forwarded-*`` headers are ignored.
- Otherwise (PasteDeploy ``PrefixMiddleware`` semantics) ``X-Forwarded-Server`` → ``SERVER_NAME``
  and ``HTTP_HOST``, ``X-Forwarded-Host`` → ``HTTP_HOST``, ``X-Forwarded-For`` →
  ``REMOTE_ADDR``, ``X-Forwarded-Scheme`` (else ``X-Forwarded-Proto``) → ``wsgi.url_scheme``.
- In both cases the ``X-Forwarded-Server/Host/For/Scheme/Proto`` headers are removed from the
  environ and kept as ``HTTP_ORIGINAL_X_FORWARDED_*``, and a replaced ``HTTP_HOST`` is kept as
  ``HTTP_ORIGINAL_HOST``.
- Finally ``C2CWSGIUTILS_FORCE_PROTO``, ``C2CWSGIUTILS_FORCE_HOST``,
  ``C2CWSGIUTILS_FORCE_SERVER_NAME`` and ``C2CWSGIUTILS_FORCE_REMOTE_ADDR`` override the result
  (read once, when the filter or the application is built).

Trusted proxies (``C2C_TRUSTED_PROXIES`` / ``c2c.trusted_proxies``, or the filter's
``trusted_proxies`` option: comma-separated addresses or CIDR networks). Unset, every client is
trusted and the left-most values are used, as in the reference implementation, so any client
can choose its address, host and scheme. Set, the headers are honoured only when the direct peer
(``REMOTE_ADDR``) is a trusted proxy, and the client is the right-most ``for`` /
``X-Forwarded-For`` entry that is not a trusted proxy.

The tween is added ``under=INGRESS``; request tracking places itself under it. Another tween
that reads the client's address, host or scheme must be placed under it too, e.g.
``under=("c2cwsgiutils.client_info.client_info_tween_factory", INGRESS)``: among tweens that
only say ``under=INGRESS``, Pyramid puts the last one added closest to the ingress.

Malformed values (bad syntax, invalid address, host or protocol, headers over 16 KiB) are
ignored, with a warning at most once a minute per kind of problem; they never fail a request.

.. versionadded:: 6.0
.. versionchanged:: 6.2
   RFC 7239 parsing, trusted proxies, validation of the values.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from c2cwsgiutils import _settings
from c2cwsgiutils._client_info import Network, Processor, RateLimitedLog
from c2cwsgiutils._safety import swallow

__all__ = ["ClientInfoSettings", "Filter", "client_info_tween_factory", "filter_factory", "includeme"]

_LOG = logging.getLogger(__name__)


def _as_networks(value: object) -> tuple[Network, ...]:
    """Parse comma-separated addresses and CIDR networks (``ValueError`` when invalid)."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in _settings.as_list(value))


def _as_scheme(value: object) -> str:
    return str(value).strip().lower()


@_settings.frozen_dataclass
class ClientInfoSettings:
    """Settings of the proxy header processing."""

    trusted_proxies: tuple[Network, ...] = _settings.knob(
        (),
        env="C2C_TRUSTED_PROXIES",
        ini="c2c.trusted_proxies",
        convert=_as_networks,
        doc="Comma-separated addresses or CIDR networks of the reverse proxies whose forwarded "
        "headers are trusted; unset, every client is trusted (left-most values).",
    )
    force_proto: str = _settings.knob(
        "",
        env="C2CWSGIUTILS_FORCE_PROTO",
        convert=_as_scheme,
        doc="Scheme of every request (`wsgi.url_scheme`), whatever the headers say.",
    )
    force_host: str = _settings.knob(
        "", env="C2CWSGIUTILS_FORCE_HOST", doc="Host of every request (`HTTP_HOST`)."
    )
    force_server_name: str = _settings.knob(
        "", env="C2CWSGIUTILS_FORCE_SERVER_NAME", doc="`SERVER_NAME` of every request."
    )
    force_remote_addr: str = _settings.knob(
        "", env="C2CWSGIUTILS_FORCE_REMOTE_ADDR", doc="Client address of every request (`REMOTE_ADDR`)."
    )


def _processor(conf: ClientInfoSettings) -> Processor:
    force = {
        "wsgi.url_scheme": conf.force_proto,
        "HTTP_HOST": conf.force_host,
        "SERVER_NAME": conf.force_server_name,
        "REMOTE_ADDR": conf.force_remote_addr,
    }
    return Processor(conf.trusted_proxies, force, RateLimitedLog(_LOG))


class Filter:
    """WSGI middleware that applies the proxy headers (see the module documentation).

    Args:
        app: the WSGI application to wrap.
        trusted_proxies: comma-separated addresses or CIDR networks (or an iterable of them) of
            the trusted reverse proxies; ``C2C_TRUSTED_PROXIES``, when set, takes precedence.

    Raises:
        pyramid.exceptions.ConfigurationError: an address or network is invalid.
    """

    def __init__(self, app: Callable[..., Any], trusted_proxies: str | Iterable[str] | None = None) -> None:
        """Resolve the settings once: nothing is read from the environment per request."""
        self._app = app
        ini: dict[str, Any] = {}
        if trusted_proxies is not None:
            ini["c2c.trusted_proxies"] = (
                trusted_proxies if isinstance(trusted_proxies, str) else tuple(trusted_proxies)
            )
        self._process = _processor(_settings.resolve(ClientInfoSettings, ini))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Process the proxy headers of ``environ``, then call the application."""
        try:
            self._process(environ)
        except Exception:  # logged: the request goes on with its own headers
            swallow("processing the proxy headers")
        return self._app(environ, start_response)


def filter_factory(
    global_conf: Mapping[str, Any] | None = None, **local_conf: Any
) -> Callable[[Any], Filter]:
    """PasteDeploy filter factory of ``egg:c2cwsgiutils#client_info``.

    Args:
        global_conf: the ``[DEFAULT]`` section; its ``c2c.trusted_proxies`` is used when the
            filter section has no ``trusted_proxies``.
        local_conf: the filter section; ``trusted_proxies`` (or ``c2c.trusted_proxies``).

    Returns:
        A callable that wraps a WSGI application in a :class:`Filter`.
    """
    trusted = local_conf.get("trusted_proxies") or local_conf.get("c2c.trusted_proxies")
    if trusted is None and global_conf:
        trusted = global_conf.get("c2c.trusted_proxies")

    def make_filter(app: Any) -> Filter:
        return Filter(app, trusted_proxies=trusted)

    return make_filter


def client_info_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """Pyramid tween: the same processing as :class:`Filter`, unless the filter already ran."""
    process = _processor(_settings.get(registry, ClientInfoSettings))

    def client_info_tween(request: Any) -> Any:
        try:
            process(request.environ)
        except Exception:  # logged: the request goes on with its own headers
            swallow("processing the proxy headers")
        return handler(request)

    return client_info_tween


def includeme(config: Any) -> None:
    """Process the proxy headers in a tween at the top of the chain, before anything reads them.

    Raises:
        pyramid.exceptions.ConfigurationError: ``C2C_TRUSTED_PROXIES`` is invalid.
    """
    from pyramid.tweens import INGRESS

    _settings.get(config.registry, ClientInfoSettings)  # invalid settings fail at startup
    config.add_tween("c2cwsgiutils.client_info.client_info_tween_factory", under=INGRESS)
