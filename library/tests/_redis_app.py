"""A WSGI application for the multi-process tests of the broadcast (served by gunicorn)."""

from __future__ import annotations

import logging
import os
from typing import Any

from c2cwsgiutils import testing


def _whoami(request: Any) -> dict[str, Any]:
    name = request.params.get("name", "root")
    return {"pid": os.getpid(), "level": logging.getLevelName(logging.getLogger(name).level)}


def _configure(config: Any) -> None:
    config.add_route("whoami", "/whoami", request_method="GET")
    config.add_view(_whoami, route_name="whoami", renderer="fast_json", http_cache=0)


app = testing.make_app(
    {},
    includes=(
        "c2cwsgiutils.pyramid",
        "c2cwsgiutils.broadcast",
        "c2cwsgiutils.logging_view",
        "c2cwsgiutils.debug",
    ),
    configure=_configure,
)
