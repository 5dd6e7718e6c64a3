"""Everything a service's ``gunicorn.conf.py`` needs.

With it, the file reduces to::

    from c2cwsgiutils.gunicorn_config import *  # noqa: F403

    workers = 4  # then override what the service needs

What it sets:

- ``bind = ":8080"``, ``worker_class = "gthread"``, ``workers`` and ``threads`` from
  ``GUNICORN_WORKERS`` and ``GUNICORN_THREADS`` (10). Without ``GUNICORN_WORKERS``, the worker
  count follows the container's CPU quota (cgroup v2 ``cpu.max``, else cgroup v1
  ``cpu.cfs_quota_us``/``cpu.cfs_period_us``), rounded up, never more than the CPUs the process
  may run on; with no quota it is 2, the reference default (the host's CPU count says nothing
  about what a container may use);
- the application: ``paste = wsgi_app =`` the ini file given with ``--paste``, else
  ``C2CWSGIUTILS_CONFIG``, else ``production.ini``. A config URI such as
  ``c2c:///app/production.ini`` is loaded through plaster (the ``c2c://`` loader interpolates the
  environment), which gunicorn's own ``--paste`` cannot do;
- ``raw_paste_global_conf``: the environment as ``KEY=VALUE`` (``%`` doubled), the interpolation
  values of a plain ``--paste`` ini file;
- logging: ``logconfig_dict`` from the ini file's ``[loggers]``/``[handlers]``/``[formatters]``
  (printed on stdout when ``DEBUG_LOGCONFIG=1``), used for gunicorn's error and access logs too, so
  that ``LOG_TYPE=json`` makes every line JSON; ``accesslog = "-"`` with ``access_log_format``
  from ``GUNICORN_ACCESS_LOG_FORMAT`` or :data:`DEFAULT_ACCESS_LOG_FORMAT`;
- ``logger_class = Logger``: gunicorn's logger, whose access lines never show ``secret=`` values,
  ``X-API-Key`` values or the ``C2C_SECRET`` cookie, and whose access records carry ``status``,
  ``method``, ``path``, ``query``, ``duration`` (seconds), ``client_addr`` and ``request_id`` for
  the JSON handlers (through a logging filter, see :class:`Logger`).

The environment is read once, when gunicorn reads its configuration file.

.. versionadded:: 6.2
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from gunicorn import glogging

from c2cwsgiutils import (
    _settings,
    get_config_defaults,
    get_logconfig_dict,
    get_paste_config,
    request_id_header,
)
from c2cwsgiutils._gunicorn_access import AccessLogFilter
from c2cwsgiutils._gunicorn_settings import GunicornSettings

__all__ = [
    "DEFAULT_ACCESS_LOG_FORMAT",
    "DEFAULT_WORKERS",
    "Logger",
    "access_log_format",
    "accesslog",
    "bind",
    "cgroup_cpu_limit",
    "child_exit",
    "gunicorn_settings",
    "load_paste_app",
    "logconfig_dict",
    "logger_class",
    "on_starting",
    "paste",
    "post_fork",
    "raw_paste_global_conf",
    "threads",
    "worker_class",
    "workers",
    "wsgi_app",
]

DEFAULT_ACCESS_LOG_FORMAT = '%(H)s %({Host}i)s %(m)s %(U)s?%(q)s "%(f)s" "%(a)s" %(s)s %(B)s %(D)s %(p)s'
"""The access log format of the reference template (the query string is logged, secrets masked)."""

DEFAULT_WORKERS = 2
"""Worker count when neither ``GUNICORN_WORKERS`` nor a cgroup CPU quota gives one."""

_LOG = logging.getLogger(__name__)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as cgroup_file:
            return cgroup_file.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _quota(quota: str | None, period: str | None) -> float | None:
    try:
        quota_value, period_value = int(quota or ""), int(period or "")
    except ValueError:
        return None
    if quota_value <= 0 or period_value <= 0:
        return None
    return quota_value / period_value


def cgroup_cpu_limit(cgroup_root: str = "/sys/fs/cgroup") -> float | None:
    """Return the CPU quota of the process's cgroup, in CPUs, or ``None`` without a quota.

    Reads cgroup v2 ``cpu.max`` (``"200000 100000"`` = 2 CPUs, ``"max 100000"`` = no quota),
    else cgroup v1 ``cpu/cpu.cfs_quota_us`` and ``cpu/cpu.cfs_period_us`` (``-1`` = no quota).

    Args:
        cgroup_root: where the cgroup file system is mounted.

    Returns:
        The number of CPUs the quota allows (may be fractional), or ``None``.
    """
    cpu_max = _read_text(os.path.join(cgroup_root, "cpu.max"))
    if cpu_max is not None:
        max_quota, _, max_period = cpu_max.partition(" ")
        return _quota(max_quota, max_period)
    for directory in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        base = os.path.join(cgroup_root, directory)
        quota = _read_text(os.path.join(base, "cpu.cfs_quota_us"))
        if quota is not None:
            return _quota(quota, _read_text(os.path.join(base, "cpu.cfs_period_us")))
    return None


def _default_workers(cgroup_root: str) -> int:
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is None:
        return DEFAULT_WORKERS
    workers = max(1, math.ceil(limit - 0.001))  # 2.0004 CPUs (rounding of the period) is 2
    with contextlib.suppress(AttributeError, OSError):  # sched_getaffinity is Linux only
        workers = min(workers, len(os.sched_getaffinity(0)))
    return workers


def _is_uri(paste_config: str) -> bool:
    scheme, separator, _ = paste_config.partition("://")
    return bool(separator) and scheme.replace("+", "").isalnum()


def _logconfig(paste_config: str, environ: Mapping[str, str]) -> dict[str, Any]:
    try:
        config = get_logconfig_dict(paste_config, environ)
    except FileNotFoundError:
        # Imported outside of a service (a test, a script): gunicorn then keeps its defaults.
        _LOG.warning("No logging configuration: '%s' does not exist", paste_config)
        return {}
    if not config["loggers"] and "root" not in config:
        return {}
    return config


def gunicorn_settings(
    environ: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    *,
    cgroup_root: str = "/sys/fs/cgroup",
) -> dict[str, Any]:
    """Compute the gunicorn settings that this module exports.

    Args:
        environ: the environment (default: ``os.environ``).
        argv: the command line (default: ``sys.argv``), searched for ``--paste``.
        cgroup_root: where the cgroup file system is mounted (read for the default worker count).

    Returns:
        The settings, by gunicorn setting name.
    """
    environ = os.environ if environ is None else environ
    paste_config = get_paste_config(argv, environ)
    conf = _settings.resolve(GunicornSettings, None, environ)
    settings: dict[str, Any] = {
        "bind": ":8080",
        "worker_class": "gthread",
        "workers": conf.workers or _default_workers(cgroup_root),
        "threads": conf.threads,
        "accesslog": "-",
        "access_log_format": conf.access_log_format or DEFAULT_ACCESS_LOG_FORMAT,
        "logconfig_dict": _logconfig(paste_config, environ),
        # ``%`` doubled: PasteDeploy interpolates these values like the ini file's own defaults.
        "raw_paste_global_conf": [f"{name}={value}" for name, value in get_config_defaults(environ).items()],
        "logger_class": Logger,
    }
    if _is_uri(paste_config):
        # gunicorn's paste support only knows PasteDeploy's ``config:`` URIs: load through plaster.
        settings["paste"] = None
        settings["wsgi_app"] = f"c2cwsgiutils.gunicorn_config:load_paste_app({paste_config!r})"
    else:
        settings["paste"] = settings["wsgi_app"] = paste_config
    return settings


def load_paste_app(config_uri: str, name: str | None = None) -> Any:
    """Load the WSGI application of a plaster config URI (``c2c:///app/production.ini``).

    Args:
        config_uri: the URI of the ini file.
        name: the application (or pipeline) section name; default: the URI's fragment, else ``main``.

    Returns:
        The WSGI application.
    """
    import plaster

    return plaster.get_loader(config_uri, protocols=["wsgi"]).get_wsgi_app(name)


class Logger(glogging.Logger):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's logger, following the ini's logging configuration and keeping secrets out of it.

    The access lines are gunicorn's own (``access()`` and ``atoms()`` are not changed); what this
    class adds is done when gunicorn calls ``setup`` (at start and on each reload), with the
    logging module's API:

    - when ``logconfig_dict`` does not configure ``gunicorn.error`` or ``gunicorn.access``, the
      handlers that gunicorn just added to them are removed and their records go to the root
      handlers of the ini (JSON with ``LOG_TYPE=json``) instead;
    - ``gunicorn.access`` gets :class:`c2cwsgiutils._gunicorn_access.AccessLogFilter` unless the
      logging configuration already gave it one (:func:`c2cwsgiutils.get_logconfig_dict` does): the
      atoms never show ``secret=`` values, API keys, authorisation headers or the ``C2C_SECRET``
      cookie, and the records carry ``status``, ``method``, ``path``, ``query``, ``duration``
      (seconds), ``client_addr`` and ``request_id`` (the response's request id header, else the
      request's ``X-Request-ID``; ``C2C_REQUEST_ID_HEADER`` names another header to look for first).
    """

    def setup(self, cfg: Any) -> None:
        """Configure the loggers from ``cfg`` (at start and on reload)."""
        logs = (self.error_log, self.access_log)
        before = [set(log.handlers) for log in logs]
        super().setup(cfg)
        if cfg.logconfig_dict:
            configured = cfg.logconfig_dict.get("loggers", {})
            for log, handlers in zip(logs, before, strict=True):
                if log.name in configured:
                    continue
                for handler in [handler for handler in log.handlers if handler not in handlers]:
                    log.removeHandler(handler)
                log.propagate = True
        if not any(isinstance(existing, AccessLogFilter) for existing in self.access_log.filters):
            header = request_id_header(cfg.paste or get_paste_config())
            self.access_log.addFilter(AccessLogFilter(header))


def on_starting(server: Any) -> None:
    """Gunicorn hook (master): serve the workers' metrics on ``C2C_PROMETHEUS_PORT`` when set."""
    del server
    from c2cwsgiutils import prometheus

    prometheus.start()


def post_fork(server: Any, worker: Any) -> None:
    """Gunicorn hook (new worker): forget the master's connections and threads."""
    del server, worker
    from c2cwsgiutils import prometheus

    prometheus.cleanup()


def child_exit(server: Any, worker: Any) -> None:
    """Gunicorn hook (master): archive the metrics of a worker that exited and remove its files."""
    del server
    from c2cwsgiutils import prometheus

    prometheus.mark_process_dead(worker.pid)


_SETTINGS = gunicorn_settings()

bind: str = _SETTINGS["bind"]
worker_class: str = _SETTINGS["worker_class"]
workers: int = _SETTINGS["workers"]
threads: int = _SETTINGS["threads"]
paste: str | None = _SETTINGS["paste"]
wsgi_app: str = _SETTINGS["wsgi_app"]
accesslog: str = _SETTINGS["accesslog"]
access_log_format: str = _SETTINGS["access_log_format"]
logconfig_dict: dict[str, Any] = _SETTINGS["logconfig_dict"]
raw_paste_global_conf: list[str] = _SETTINGS["raw_paste_global_conf"]
logger_class: type[Logger] = _SETTINGS["logger_class"]

if _settings.resolve_one(GunicornSettings, "debug_logconfig", None):
    # One line of JSON, so that a JSON log pipeline still parses it.
    sys.stdout.write(json.dumps({"logconfig_dict": logconfig_dict}, default=str) + "\n")
    sys.stdout.flush()
