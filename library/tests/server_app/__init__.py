"""A small application that test_servers.py serves with real gunicorn and waitress processes."""

from __future__ import annotations

import logging
from typing import Any

from pyramid.config import Configurator

from c2cwsgiutils.health_check import HealthCheck

_LOG = logging.getLogger("server_app")


def _hello(request: Any) -> dict[str, str]:
    # Logs the query string on purpose: the secret in it must be masked in the log line.
    _LOG.info("hello view called with %s", request.query_string)
    settings = request.registry.settings
    return {"hello": settings["server_app.greeting"], "percent": settings["server_app.percent"]}


def _fail(request: Any) -> None:
    raise RuntimeError("this view always fails")


def main(global_config: dict[str, Any], **settings: Any) -> Any:
    """Build the application: the whole library, a hello view and a view that raises."""
    del global_config
    with Configurator(settings=settings) as config:
        config.include("c2cwsgiutils.pyramid")
        config.add_route("hello", "/hello", request_method="GET")
        config.add_view(_hello, route_name="hello", renderer="json")
        config.add_route("fail", "/fail", request_method="GET")
        config.add_view(_fail, route_name="fail")
        HealthCheck(config).add_custom_check("fine", lambda _request: "fine", level=1)
        return config.make_wsgi_app()
