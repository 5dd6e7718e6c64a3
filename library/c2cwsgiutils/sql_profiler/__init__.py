"""SQL profiler: logs the ``EXPLAIN ANALYZE`` plan of each distinct SELECT of the process once.

``EXPLAIN ANALYZE`` runs the statement a second time, so only the SELECTs that are safe to run
twice are analysed: no call to a function with effects outside the transaction (``nextval``,
``pg_advisory_lock``, ... or any function PostgreSQL's catalog marks ``VOLATILE``), no row lock,
no write. The others get a plain ``EXPLAIN`` and the log line (and its ``analyze_skipped``
field) says why; see :mod:`c2cwsgiutils.sql_profiler._side_effects` for the rules.

The plans are logged at INFO on the logger ``c2cwsgiutils.sql_profiler._impl`` (configuring
``c2cwsgiutils.sql_profiler`` works too). Memory is bounded: at most
``max_statements`` (1000) distinct statements are remembered. Enabling and disabling is
thread-safe and never adds or removes SQLAlchemy listeners while queries run.

The view ``GET {base}/sql_profiler[?enable=1|0]`` (route ``c2c_sql_profiler``, enabled by
``C2C_SQL_PROFILER_ENABLED`` / ``c2c.sql_profiler_enabled``, secret-protected) toggles it in every
process of the service (broadcast) and answers ``{"status": 200, "enabled": bool}``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from c2cwsgiutils import _process_state, _settings

if TYPE_CHECKING:
    from c2cwsgiutils.sql_profiler._impl import Profiler, format_statement, profiler

__all__ = [
    "Profiler",
    "SqlProfilerSettings",
    "disable",
    "enable",
    "format_statement",
    "includeme",
    "is_enabled",
    "profiler",
]

_LOG = logging.getLogger(__name__)
# Importing the implementation imports SQLAlchemy: only when the profiler is used.
_LAZY = frozenset({"Profiler", "format_statement", "profiler"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from c2cwsgiutils.sql_profiler import _impl

        return getattr(_impl, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _profiler() -> Profiler:
    from c2cwsgiutils.sql_profiler import _impl

    return _impl.profiler


_CHANNEL = "c2c_sql_profiler"


@_settings.frozen_dataclass
class SqlProfilerSettings:
    """Settings of the SQL profiler view."""

    enabled: bool = _settings.knob(
        False,
        env="C2C_SQL_PROFILER_ENABLED",
        ini="c2c.sql_profiler_enabled",
        convert=_settings.as_bool,
        doc="Enable the view that switches the SQL profiler on and off in every process.",
    )


def enable() -> None:
    """Start profiling the SELECTs of this process."""
    _profiler().enable()


def disable() -> None:
    """Stop profiling."""
    _profiler().disable()


@_process_state.on_reset
def _reset() -> None:
    from c2cwsgiutils.sql_profiler import _impl

    if _impl.profiler.enabled:
        _impl.profiler.disable()


def is_enabled() -> bool:
    """Whether the profiler is active in this process."""
    return _profiler().enabled


def _toggle(enable: bool) -> dict[str, Any]:
    """Broadcast receiver: switch the profiler of this process."""
    if enable:
        _profiler().enable()
    else:
        _profiler().disable()
    return {"status": 200, "enabled": _profiler().enabled}


def _view(request: Any) -> dict[str, Any]:
    from c2cwsgiutils import _admin, _audit, auth, broadcast

    auth.auth_view(request)
    enable = _admin.bool_param(request, "enable")
    if enable is not None:
        _LOG.critical("SQL profiler enabled=%s (by %s)", enable, _audit.who(request))
        broadcast.broadcast(_CHANNEL, params={"enable": enable}, expect_answers=True)
        _audit.log(request, f"set the SQL profiler to enabled={enable}", "done")
    return {"status": 200, "enabled": _profiler().enabled}


def includeme(config: Any) -> None:
    """Register the ``c2c_sql_profiler`` view when ``C2C_SQL_PROFILER_ENABLED`` is true."""
    if not _settings.get(config.registry, SqlProfilerSettings).enabled:
        return
    from c2cwsgiutils import _admin

    _admin.add_admin_view(
        config, "c2c_sql_profiler", "/sql_profiler", _view, channel=_CHANNEL, receiver=_toggle
    )
