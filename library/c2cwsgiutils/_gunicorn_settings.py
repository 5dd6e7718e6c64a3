"""The settings of :mod:`c2cwsgiutils.gunicorn_config` (environment variables only).

They are read in the gunicorn master before any application exists, so they have no ini key.
Kept apart from ``gunicorn_config``, which computes gunicorn's settings when it is imported.
"""

from __future__ import annotations

from c2cwsgiutils import _settings

__all__ = ["GunicornSettings"]


def _as_int(value: object) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"an integer is expected, got {value!r}") from None


@_settings.frozen_dataclass
class GunicornSettings:
    """Settings of the gunicorn configuration module."""

    workers: int = _settings.knob(
        0,
        env="GUNICORN_WORKERS",
        convert=_as_int,
        doc="gunicorn workers (0: one per CPU of the cgroup's quota, else 2).",
    )
    threads: int = _settings.knob(
        10, env="GUNICORN_THREADS", convert=_as_int, doc="Threads per gunicorn worker."
    )
    access_log_format: str = _settings.knob(
        "", env="GUNICORN_ACCESS_LOG_FORMAT", doc="gunicorn's access log format (default: the library's)."
    )
    debug_logconfig: bool = _settings.knob(
        False,
        env="DEBUG_LOGCONFIG",
        convert=_settings.as_bool,
        doc="Print the logging configuration that gunicorn gets, as one JSON line, at start.",
    )
