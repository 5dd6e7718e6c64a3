"""Timings of the Pyramid routes and renderers, the SQL statements and the outgoing requests.

- ``<prefix>pyramid_routes_seconds{method, route, status, group}``: wall-clock time of each
  request below the tweens of the request tracking (a tween over the exception views, so an error
  turned into a response counts with its status); route = the matched route name or
  ``_not_found``; status = the response status, the ``HTTPException`` code, or 599 for another
  exception; group = the first digit of the status.
- ``<prefix>pyramid_render_seconds{...}``: from the ``BeforeRender`` event to the end of the view.
- Response header ``Server-Timing: route;dur=<ms>;desc="<route>", render;dur=<ms>``.
- ``<prefix>requests_seconds{scheme, hostname, port, method, status, group}``: outgoing calls
  made with ``requests`` (status 599 when the call failed).
- :func:`init_db_spy`: ``<prefix>database_seconds{what, engine}`` (see :mod:`._sql`).

All are histograms; the unbounded labels (hosts, SQL statements) keep at most
``C2C_PROMETHEUS_MAX_LABEL_VALUES`` distinct values.

.. versionadded:: 6.0
.. versionchanged:: 6.2
   Wall-clock histograms, bounded labels, ``Server-Timing`` with ``dur``.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from c2cwsgiutils import _headers, _metrics, _post_import
from c2cwsgiutils._safety import swallow
from c2cwsgiutils.stats_pyramid import _sql

__all__ = ["includeme", "init_db_spy", "stats_tween_factory"]

_RENDER_START = "c2cwsgiutils.stats.render_start"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
_FAILED = 599


def _method(method: str | None) -> str:
    method = (method or "").upper()
    return method if method in _METHODS else "other"


def _on_before_render(event: Any) -> None:
    request = event.get("request")
    if request is not None:
        request.environ[_RENDER_START] = time.perf_counter()


def stats_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """Time each request with the wall clock and add the ``Server-Timing`` header."""
    del registry
    from pyramid.httpexceptions import HTTPException

    metrics = _metrics.get()
    set_headers = _headers.HeaderSetter(("Server-Timing",), append=("Server-Timing",))
    perf_counter = time.perf_counter
    # (method, route, status) -> the labelled histograms: prometheus_client's labels() costs more
    # than the observation. Bounded: methods and statuses are bounded, routes come from the config.
    children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def histograms(key: tuple[str, str, int]) -> tuple[Any, Any]:
        method, route, status = key
        labels = {"method": method, "route": route, "status": str(status), "group": str(status // 100)}
        pair = children[key] = (
            metrics.series(metrics.pyramid_routes_seconds, labels),
            metrics.series(metrics.pyramid_render_seconds, labels),
        )
        return pair

    def stats_tween(request: Any) -> Any:
        start = perf_counter()
        response = None
        status = _FAILED
        try:
            response = handler(request)
            status = response.status_code
        except HTTPException as error:
            status = error.code
            raise
        finally:
            end = perf_counter()
            try:
                matched = request.matched_route
                route = matched.name if matched is not None else "_not_found"
                environ = request.environ
                method = environ.get("REQUEST_METHOD")
                key = (method if method in _METHODS else _method(method), route, status)
                routes_seconds, render_seconds = children.get(key) or histograms(key)
                routes_seconds.observe(end - start)
                timing = f'route;dur={(end - start) * 1000:.1f};desc="{route}"'
                render_start = environ.get(_RENDER_START)
                if render_start is not None:
                    render_seconds.observe(end - render_start)
                    timing += f", render;dur={(end - render_start) * 1000:.1f}"
                if response is not None:
                    set_headers(response, (("Server-Timing", timing),))
            except Exception:  # logged: the response goes without its timing
                swallow("timing a request")
        return response

    return stats_tween


def _observe_outgoing(request: Any, response: Any, seconds: float) -> None:
    metrics = _metrics.get()
    url = urllib.parse.urlsplit(str(request.url))
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, 0)
    status = response.status_code if response is not None else _FAILED
    metrics.requests_seconds.labels(
        scheme=url.scheme,
        hostname=metrics.hosts(url.hostname or ""),
        port=str(port),
        method=_method(request.method),
        status=str(status),
        group=str(status // 100),
    ).observe(seconds)


def _track_outgoing_requests() -> None:
    from c2cwsgiutils.request_tracking import add_requests_observer, remove_requests_observer

    remove_requests_observer(_observe_outgoing)  # idempotent: never observed twice
    add_requests_observer(_observe_outgoing)


def init_db_spy() -> None:
    """Time every SQL statement and session commit in ``<prefix>database_seconds`` (once per process)."""
    _sql.install()


def includeme(config: Any) -> None:
    """Time the routes, the renderers and the outgoing requests (and the SQL when SQLAlchemy is there)."""
    from pyramid.events import BeforeRender
    from pyramid.tweens import EXCVIEW, INGRESS

    config.add_subscriber(_on_before_render, BeforeRender)
    config.add_tween(
        "c2cwsgiutils.stats_pyramid.stats_tween_factory",
        over=EXCVIEW,
        under=("c2cwsgiutils.request_tracking.request_tracking_tween_factory", INGRESS),
    )
    _track_outgoing_requests()
    init_db_spy()
    _post_import.subscribe(config)
