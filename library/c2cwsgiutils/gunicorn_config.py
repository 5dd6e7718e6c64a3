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
- ``logger_class = Logger``: the access log never shows ``secret=`` values, ``X-API-Key`` values or
  the ``C2C_SECRET`` cookie, and each access record carries ``status``, ``method``, ``path``,
  ``query``, ``duration`` (seconds), ``client_addr`` and ``request_id`` for the JSON handlers.

The environment is read once, when gunicorn reads its configuration file.

.. versionadded:: 6.2
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from gunicorn import glogging

from c2cwsgiutils import _settings, get_config_defaults, get_logconfig_dict, get_paste_config
from c2cwsgiutils._gunicorn_access import MASKED_ATOMS as _MASKED_ATOMS
from c2cwsgiutils._gunicorn_access import REDACTED_ATOMS as _REDACTED_ATOMS
from c2cwsgiutils._redact import MASK, may_hold_secret, redact

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


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


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
    settings: dict[str, Any] = {
        "bind": ":8080",
        "worker_class": "gthread",
        "workers": _int(environ, "GUNICORN_WORKERS", 0) or _default_workers(cgroup_root),
        "threads": _int(environ, "GUNICORN_THREADS", 10),
        "accesslog": "-",
        "access_log_format": environ.get("GUNICORN_ACCESS_LOG_FORMAT") or DEFAULT_ACCESS_LOG_FORMAT,
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


def _status_code(status: Any) -> int | str:
    if isinstance(status, int):
        return status
    text = str(status).split(None, 1)[0] if status else ""
    return int(text) if text.isdigit() else text


class Logger(glogging.Logger):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn logger that follows the ini's logging configuration and keeps secrets out of it.

    - When ``logconfig_dict`` does not configure ``gunicorn.error`` or ``gunicorn.access``, their
      records go to the root handlers of the ini (JSON with ``LOG_TYPE=json``) instead of
      gunicorn's plain-text handlers.
    - Access log atoms never show ``secret=`` values, API keys, authorisation headers or the
      ``C2C_SECRET`` cookie.
    - Access records carry ``status``, ``method``, ``path``, ``query``, ``duration`` (seconds),
      ``client_addr`` and ``request_id`` (from the response's request id header).
    """

    def setup(self, cfg: Any) -> None:
        """Configure the loggers from ``cfg`` (at start and on reload)."""
        super().setup(cfg)
        # Read once: each attribute of gunicorn's configuration is a lookup and a method call.
        self._c2c_format = cfg.access_log_format
        self._c2c_plan = _format_plan(self._c2c_format)
        header = os.environ.get("C2C_REQUEST_ID_HEADER", "").strip()
        self._c2c_request_id_headers = tuple(
            dict.fromkeys(name.lower() for name in (header, "X-Request-ID") if name)
        )
        self._c2c_access_enabled = bool(
            cfg.accesslog
            or cfg.logconfig
            or cfg.logconfig_dict
            or getattr(cfg, "logconfig_json", None)
            or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
        )
        if cfg.logconfig_dict:
            configured = cfg.logconfig_dict.get("loggers", {})
            for log in (self.error_log, self.access_log):
                if log.name in configured:
                    continue
                for handler in list(log.handlers):
                    if getattr(handler, "_gunicorn", False):
                        log.removeHandler(handler)
                log.propagate = True

    def atoms(self, resp: Any, req: Any, environ: Mapping[str, Any], request_time: Any) -> dict[str, Any]:
        """Return gunicorn's access log atoms (all of them) with the secrets masked."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in _REDACTED_ATOMS:
            value = atoms.get(key)
            if isinstance(value, str) and value:
                atoms[key] = redact(value)
        for key in _MASKED_ATOMS:
            if key in atoms:
                atoms[key] = MASK
        return atoms

    def _c2c_format_atoms(
        self, resp: Any, req: Any, environ: Mapping[str, Any], request_time: Any
    ) -> _FormatAtoms:
        """The atoms that the access log format uses, as gunicorn's ``SafeAtoms`` would give them.

        gunicorn computes every atom (a dictionary entry per request header, response header and
        environ variable) and then copies them all to escape quotes; the line only reads the
        handful that its format names. This computes those only: the same values, masked and
        escaped the same way, in a dictionary that answers ``-`` for any other atom.
        """
        atoms = _FormatAtoms()
        to_redact: list[tuple[str, str]] = []
        for key, environ_key, default, getter, treatment in self._c2c_plan:
            if environ_key is not None:
                value = environ.get(environ_key, default)
            else:
                value = getter(self, resp, req, environ, request_time)
                if value is _MISSING:
                    atoms[key] = "-"
                    continue
            if treatment is _MASK:
                value = MASK
            elif isinstance(value, str):
                if treatment is _REDACT and value:
                    to_redact.append((key, value))
                    continue
                value = value.replace('"', '\\"')
            atoms[key] = value
        if to_redact:
            # One search for the words of a secret in all of them; redacted one by one if found.
            secret = may_hold_secret("\0".join([value for _, value in to_redact]))
            for key, value in to_redact:
                atoms[key] = (redact(value) if secret else value).replace('"', '\\"')
        return atoms

    def _c2c_access_fields(self, resp: Any, environ: Mapping[str, Any], request_time: Any) -> dict[str, Any]:
        path = environ.get("PATH_INFO") or ""
        query = environ.get("QUERY_STRING")
        if may_hold_secret(f"{path}\0{query}" if query else path):
            path = redact(path)
            query = redact(query) if query else query
        fields: dict[str, Any] = {
            "status": _status_code(resp.status),
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "duration": request_time.total_seconds(),
            "client_addr": environ.get("REMOTE_ADDR"),
        }
        if query:
            fields["query"] = query
        request_id = None
        for name, value in resp.headers or ():
            if name.lower() in self._c2c_request_id_headers:
                request_id = value
                break
        if request_id is None:
            request_id = environ.get("HTTP_X_REQUEST_ID")
        if request_id is not None:
            fields["request_id"] = request_id
        return fields

    def access(self, resp: Any, req: Any, environ: Mapping[str, Any], request_time: Any) -> None:
        """Log one access line (gunicorn's format) with the structured fields as record attributes.

        The record is made and handled directly (``Logger.info`` would also walk the stack to
        find the caller, which is always this method).
        """
        log = self.access_log
        if not self._c2c_access_enabled or not log.isEnabledFor(logging.INFO):
            return
        try:
            if type(self).atoms is Logger.atoms and self.atoms_wrapper_class is glogging.SafeAtoms:
                atoms: Mapping[str, Any] = self._c2c_format_atoms(resp, req, environ, request_time)
            else:  # a subclass changed the atoms: gunicorn's way
                atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
            record = log.makeRecord(
                log.name, logging.INFO, __file__, _ACCESS_LINE, self._c2c_format, (), None, "access"
            )
            # Set here: LogRecord only unwraps a one-mapping tuple when the mapping is not empty.
            record.args = atoms
            # As makeRecord's extra, without its checks: these names are never a record's own.
            vars(record).update(self._c2c_access_fields(resp, environ, request_time))
            log.handle(record)
        except Exception:
            self.error(traceback.format_exc())


class _FormatAtoms(dict[str, Any]):
    """Atoms of an access line: like gunicorn's ``SafeAtoms``, ``-`` for an atom that is not there."""

    def __missing__(self, key: str) -> Any:
        if key.startswith("{") and key.lower() in self:
            return self[key.lower()]
        return "-"


_MISSING = object()
_ACCESS_LINE = Logger.access.__code__.co_firstlineno
_FORMAT_KEY = re.compile(r"%\(([^)]*)\)")
# What is done to the value of an atom: nothing (but escaping quotes), redact it, mask it.
_PLAIN, _REDACT, _MASK = "plain", "redact", "mask"


def _format_plan(fmt: str) -> tuple[tuple[str, str | None, Any, Any, str], ...]:
    """For each atom named by an access log format: how to compute it.

    ``(key as written, environ key, default, None, treatment)`` for an atom read from the environ,
    ``(key as written, None, None, getter, treatment)`` for the others. ``{...}`` atoms are
    case-insensitive, as in gunicorn.
    """
    plan: list[tuple[str, str | None, Any, Any, str]] = []
    for key in dict.fromkeys(_FORMAT_KEY.findall(fmt)):
        atom = key.lower() if key.startswith("{") else key
        treatment = _MASK if atom in _MASKED_ATOMS else _REDACT if atom in _REDACTED_ATOMS else _PLAIN
        if atom in _ENVIRON_ATOMS:
            environ_key, default = _ENVIRON_ATOMS[atom]
            plan.append((key, environ_key, default, None, treatment))
        else:
            plan.append((key, None, None, _ATOM_GETTERS.get(atom) or _braced_getter(atom), treatment))
    return tuple(plan)


def _last_value(pairs: Any, name: str) -> Any:
    """The value of the last ``(key, value)`` pair whose lowered key is ``name``, or ``_MISSING``."""
    if hasattr(pairs, "items"):
        pairs = pairs.items()
    found = _MISSING
    for key, value in pairs or ():
        if key.lower() == name:
            found = value
    return found


def _braced_getter(atom: str) -> Any:
    """Getter of a ``{name}i`` (request header), ``{name}o`` (response header) or ``{name}e`` atom."""
    name, kind = atom[1:-2], atom[-1:]
    if not atom.startswith("{") or atom[-2:-1] != "}":
        return lambda *_: _MISSING
    if kind == "i":
        return lambda _log, _resp, req, _environ, _time: _last_value(getattr(req, "headers", req), name)
    if kind == "o":
        return lambda _log, resp, _req, _environ, _time: _last_value(resp.headers, name)
    if kind == "e":
        return lambda _log, _resp, _req, environ, _time: _last_value(environ, name)
    return lambda *_: _MISSING


def _status_atom(status: Any) -> Any:
    return status.split(None, 1)[0] if isinstance(status, str) else status


def _sent(resp: Any) -> Any:
    return getattr(resp, "sent", None)


# gunicorn's atoms (glogging.Logger.atoms), by name: (logger, resp, req, environ, request_time).
_ATOM_GETTERS: dict[str, Any] = {
    "l": lambda *_: "-",
    "u": lambda log, _resp, _req, environ, _time: log._get_user(environ) or "-",  # noqa: SLF001  # gunicorn's own
    "t": lambda log, *_: log.now(),
    "r": lambda _log, _resp, _req, environ, _time: (
        f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
    ),
    "s": lambda _log, resp, *_: _status_atom(resp.status),
    "b": lambda _log, resp, *_: "-" if _sent(resp) is None else str(resp.sent) or "-",
    "B": lambda _log, resp, *_: _sent(resp),
    "T": lambda _log, _resp, _req, _environ, duration: duration.seconds,
    "D": lambda _log, _resp, _req, _environ, duration: duration.seconds * 1_000_000 + duration.microseconds,
    "M": lambda _log, _resp, _req, _environ, duration: (
        duration.seconds * 1000 + duration.microseconds // 1000
    ),
    "L": lambda _log, _resp, _req, _environ, duration: f"{duration.seconds}.{duration.microseconds:06d}",
    "p": lambda *_: _PID_ATOM[0],
}
# gunicorn's atoms read from the environ: (environ key, default).
_ENVIRON_ATOMS: dict[str, tuple[str, str | None]] = {
    "h": ("REMOTE_ADDR", "-"),
    "m": ("REQUEST_METHOD", None),
    "U": ("PATH_INFO", None),
    "q": ("QUERY_STRING", None),
    "H": ("SERVER_PROTOCOL", None),
    "f": ("HTTP_REFERER", "-"),
    "a": ("HTTP_USER_AGENT", "-"),
}
# The "p" atom of this process (a getpid system call per line otherwise).
_PID_ATOM: list[str] = [f"<{os.getpid()}>"]


def _new_pid_atom() -> None:
    _PID_ATOM[0] = f"<{os.getpid()}>"


os.register_at_fork(after_in_child=_new_pid_atom)


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

if _settings.as_bool(os.environ.get("DEBUG_LOGCONFIG")):
    # One line of JSON, so that a JSON log pipeline still parses it.
    sys.stdout.write(json.dumps({"logconfig_dict": logconfig_dict}, default=str) + "\n")
    sys.stdout.flush()
