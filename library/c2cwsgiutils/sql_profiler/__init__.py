"""SQL profiler: logs the ``EXPLAIN ANALYZE`` plan of each distinct SELECT of the process once.

The plans are logged at INFO on the logger ``c2cwsgiutils.sql_profiler._impl`` (configuring
``c2cwsgiutils.sql_profiler`` works too). Memory is bounded: at most
``max_statements`` (1000) distinct statements are remembered. Enabling and disabling is
thread-safe and never adds or removes SQLAlchemy listeners while queries run.

The ``{base}/sql_profiler`` view (``C2C_SQL_PROFILER_ENABLED``) that toggles it in every process
comes with the broadcast capability.
"""

from __future__ import annotations

from typing import Any

from c2cwsgiutils.sql_profiler._impl import Profiler, format_statement, profiler

__all__ = ["Profiler", "disable", "enable", "format_statement", "includeme", "is_enabled", "profiler"]


def enable() -> None:
    """Start profiling the SELECTs of this process."""
    profiler.enable()


def disable() -> None:
    """Stop profiling."""
    profiler.disable()


def is_enabled() -> bool:
    """Whether the profiler is active in this process."""
    return profiler.enabled


def includeme(config: Any) -> None:
    """Nothing to configure yet: the view comes with the broadcast capability."""
    del config
    # TODO(issue 3): the {base}/sql_profiler view and its broadcast (Redis/admin issue).
