"""CORS-enabled cornice services with the library's defaults.

.. code-block:: python

    from c2cwsgiutils import services

    hello_service = services.create("hello", "/hello", cors_credentials=True)

    @hello_service.get()
    def hello_get(request):
        return {"hello": True}

.. versionadded:: 6.0
"""

from __future__ import annotations

import logging
from typing import Any

from c2cwsgiutils import _extras

__all__ = ["create"]

_LOG = logging.getLogger(__name__)


def create(name: str, path: str, *args: Any, **kwargs: Any) -> Any:
    """Create a cornice service that answers CORS requests from any origin.

    Defaults, each overridable by a keyword argument: ``cors_origins="*"``,
    ``cors_max_age=86400``, ``http_cache=0`` (answers are not cached, except the CORS pre-flight
    answers, which may be cached ``cors_max_age`` seconds) and ``renderer="cornice_fast_json"``.

    Args:
        name: the name of the service (and of its route).
        path: the path of the service.
        *args: passed to ``cornice.Service``.
        **kwargs: passed to ``cornice.Service``.

    Returns:
        The ``cornice.Service``.
    """
    service_module = _extras.require("cornice.service", "standard", "c2cwsgiutils.services")
    kwargs.setdefault("cors_origins", "*")
    kwargs.setdefault("cors_max_age", 86400)
    kwargs.setdefault("depth", 2)  # venusian must attach the service to the caller's module
    kwargs.setdefault("http_cache", 0)
    kwargs.setdefault("renderer", "cornice_fast_json")
    filters = kwargs.get("filters", [])
    filters = list(filters) if isinstance(filters, list | tuple) else [filters]
    kwargs["filters"] = [*filters, _cache_cors_preflight]
    return service_module.Service(name, path, *args, **kwargs)


def _cache_cors_preflight(response: Any, request: Any) -> Any:
    """Let browsers and proxies cache a pre-flight answer as long as ``Access-Control-Max-Age``."""
    try:
        if request.method == "OPTIONS" and "Access-Control-Max-Age" in response.headers:
            max_age = response.headers["Access-Control-Max-Age"]
            response.headers["Cache-Control"] = f"max-age={max_age}"
            response.headers.pop("Pragma", None)
            response.headers.pop("Expires", None)
            response.vary = ["Origin", *(v for v in response.vary or () if v.lower() != "origin")]
    except Exception:
        _LOG.exception("Error while setting the cache headers of a CORS pre-flight answer")
        raise
    return response
