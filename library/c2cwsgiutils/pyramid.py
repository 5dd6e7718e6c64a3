"""``config.include("c2cwsgiutils.pyramid")``: the whole operational surface in one line.

Each capability is a module with its own ``includeme``; an application may include a single
one instead. Capabilities that need an optional extra raise a ``ConfigurationError`` naming it.
"""

from __future__ import annotations

import logging
from typing import Any

from c2cwsgiutils import _extras, _versions

__all__ = ["includeme"]

# The default set, in the order of the reference implementation.
CAPABILITIES = (
    "c2cwsgiutils.client_info",
    "c2cwsgiutils.pretty_json",
    "c2cwsgiutils.broadcast",
    "c2cwsgiutils.stats_pyramid",
    "c2cwsgiutils.request_tracking",
    "c2cwsgiutils.redis_stats",
    "c2cwsgiutils.auth",
    "c2cwsgiutils.db_maintenance_view",
    "c2cwsgiutils.logging_view",
    "c2cwsgiutils.sql_profiler",
    "c2cwsgiutils.version",
    "c2cwsgiutils.prometheus",
    "c2cwsgiutils.debug",
    "c2cwsgiutils.errors",
    "c2cwsgiutils.index",
)


def includeme(config: Any) -> None:
    """Include every default capability of the library.

    Raises:
        _versions.OutdatedDependencyError: an installed dependency is older than the library's floor.
    """
    _versions.check()
    logging.captureWarnings(True)
    config.include("c2cwsgiutils.sentry")
    config.add_settings(handle_exceptions=False)
    config.include(_extras.require("pyramid_tm", "standard", "c2cwsgiutils.pyramid"))
    config.include(_extras.require("cornice", "standard", "c2cwsgiutils.pyramid"))
    for capability in CAPABILITIES:
        config.include(capability)
