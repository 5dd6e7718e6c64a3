"""Error reporting to Sentry: ``includeme``, :func:`capture_exceptions`, :func:`filter_wsgi_app`.

Sentry is active when ``SENTRY_URL`` / ``c2c.sentry.url`` (or ``c2c.sentry_url``) is set; the SDK
is initialised once per process, by the first of :func:`includeme`, :func:`init` or the paste
filter ``egg:c2cwsgiutils#sentry`` that runs. The settings:

- ``SENTRY_CLIENT_<X>=value`` becomes the SDK option ``<x>`` (booleans, integers and floats are
  converted; ``SENTRY_CLIENT_WITH_LOCALS`` is the SDK's ``include_local_variables``). An option
  that the installed SDK does not know is skipped with a warning instead of crashing the start.
- Release: ``SENTRY_CLIENT_RELEASE`` unless empty or ``latest``, else ``GIT_HASH`` /
  ``c2c.git_hash``.
- ``SENTRY_CLIENT_IGNORE_EXCEPTIONS`` (comma list, default ``SystemExit``): exception class
  names that are never reported.
- ``SENTRY_TAG_<X>=value``: tag ``<x>`` on every event. Events sent while a request is handled
  also get the tag ``request_id`` (and the ``trace`` context of the W3C trace id).
- ``SENTRY_LEVEL`` / ``c2c.sentry_level`` (default ``ERROR``): log records from that level are
  sent as events; from ``DEBUG`` they are breadcrumbs. ``SENTRY_EXCLUDES`` /
  ``c2c.sentry.excludes`` (comma list, default ``sentry_sdk``): loggers that Sentry ignores,
  with their children.
- ``SENTRY_TRACES_SAMPLE_RATE`` / ``c2c.sentry_traces_sample_rate`` (default 0.0). When
  ``SENTRY_CLIENT_TRACES_SAMPLE_RATE`` is also set, **it wins** (the reference crashed on the
  duplicate argument); a warning says so.
- ``SENTRY_INTEGRATION_LOGGING|PYRAMID|SQLALCHEMY|REDIS|ASYNCIO`` (default true): the SDK
  integrations to enable.

.. versionadded:: 6.0
.. versionchanged:: 6.2
   Integration toggles, ``request_id`` tag, no crash on a duplicate traces sample rate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from c2cwsgiutils import _context, _process_state, _settings
from c2cwsgiutils._extras import require
from c2cwsgiutils._safety import swallow

__all__ = [
    "SentrySettings",
    "capture_exceptions",
    "filter_factory",
    "filter_wsgi_app",
    "includeme",
    "init",
    "is_enabled",
]

_LOG = logging.getLogger(__name__)

_CLIENT_PREFIX = "SENTRY_CLIENT_"
_TAG_PREFIX = "SENTRY_TAG_"
_BOOL_OPTIONS = frozenset(
    {
        "with_locals",
        "include_local_variables",
        "include_source_context",
        "default_integrations",
        "send_default_pii",
        "debug",
        "attach_stacktrace",
        "propagate_traces",
        "auto_enabling_integrations",
        "auto_session_tracking",
        "enable_tracing",
        "send_client_reports",
        "enable_logs",
    }
)
_INT_OPTIONS = frozenset({"max_breadcrumbs", "shutdown_timeout", "transport_queue_size", "max_value_length"})
_FLOAT_OPTIONS = frozenset({"sample_rate", "traces_sample_rate", "profiles_sample_rate"})
_RENAMED_OPTIONS = {"with_locals": "include_local_variables"}
# Handled by this module, not passed as they are.
_SPECIAL_OPTIONS = frozenset({"release", "ignore_exceptions"})


def _level(value: object) -> str:
    text = str(value).strip().upper()
    if text not in logging.getLevelNamesMapping():
        raise ValueError(f"unknown log level {value!r}")
    return text


@_settings.frozen_dataclass
class SentrySettings:
    """Settings of the Sentry integration (the ``SENTRY_CLIENT_*``/``SENTRY_TAG_*`` ones are dynamic)."""

    url: str = _settings.knob(
        "", env="SENTRY_URL", ini="c2c.sentry.url", doc="Sentry DSN; Sentry is enabled when set."
    )
    level: str = _settings.knob(
        "ERROR",
        env="SENTRY_LEVEL",
        ini="c2c.sentry_level",
        convert=_level,
        doc="Log records from this level are sent to Sentry as events.",
    )
    traces_sample_rate: float = _settings.knob(
        0.0,
        env="SENTRY_TRACES_SAMPLE_RATE",
        ini="c2c.sentry_traces_sample_rate",
        convert=float,
        doc="Sentry traces sample rate; `SENTRY_CLIENT_TRACES_SAMPLE_RATE` wins when both are set.",
    )
    excludes: tuple[str, ...] = _settings.knob(
        ("sentry_sdk",),
        env="SENTRY_EXCLUDES",
        ini="c2c.sentry.excludes",
        convert=_settings.as_list,
        doc="Comma-separated loggers ignored by Sentry.",
    )
    git_hash: str = _settings.knob(
        "", env="GIT_HASH", ini="c2c.git_hash", doc="Sentry release when `SENTRY_CLIENT_RELEASE` is unset."
    )
    integration_logging: bool = _settings.knob(
        True,
        env="SENTRY_INTEGRATION_LOGGING",
        convert=_settings.as_bool,
        doc="Sentry logging integration.",
    )
    integration_pyramid: bool = _settings.knob(
        True,
        env="SENTRY_INTEGRATION_PYRAMID",
        convert=_settings.as_bool,
        doc="Sentry Pyramid integration.",
    )
    integration_sqlalchemy: bool = _settings.knob(
        True,
        env="SENTRY_INTEGRATION_SQLALCHEMY",
        convert=_settings.as_bool,
        doc="Sentry SQLAlchemy integration.",
    )
    integration_redis: bool = _settings.knob(
        True,
        env="SENTRY_INTEGRATION_REDIS",
        convert=_settings.as_bool,
        doc="Sentry Redis integration.",
    )
    integration_asyncio: bool = _settings.knob(
        True,
        env="SENTRY_INTEGRATION_ASYNCIO",
        convert=_settings.as_bool,
        doc="Sentry asyncio integration.",
    )


class _State:
    """Sentry's state in this process."""

    def __init__(self) -> None:
        self.initialized = False
        self.options: dict[str, Any] = {}
        self.tags: dict[str, str] = {}


_STATE = _State()
_LOCK = threading.Lock()


def _convert(name: str, value: str) -> Any:
    if name in _BOOL_OPTIONS:
        return _settings.as_bool(value)
    if name in _INT_OPTIONS:
        return int(value)
    if name in _FLOAT_OPTIONS:
        return float(value)
    return value


def _known_options() -> frozenset[str]:
    import inspect

    from sentry_sdk.consts import ClientConstructor

    return frozenset(inspect.signature(ClientConstructor.__init__).parameters) - {"self"}


def client_options(conf: SentrySettings, environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the keyword arguments of ``sentry_sdk.init`` for these settings (without integrations)."""
    known = _known_options()
    options: dict[str, Any] = {"dsn": conf.url, "traces_sample_rate": conf.traces_sample_rate}
    client_rate = False
    for key, value in environ.items():
        if not key.startswith(_CLIENT_PREFIX) or not value:
            continue
        name = key[len(_CLIENT_PREFIX) :].lower()
        if name in _SPECIAL_OPTIONS:
            continue
        name = _RENAMED_OPTIONS.get(name, name)
        if name not in known:
            _LOG.warning("Ignoring %s: the installed sentry-sdk has no option '%s'", key, name)
            continue
        try:
            options[name] = _convert(name, value)
        except ValueError as error:
            from pyramid.exceptions import ConfigurationError

            raise ConfigurationError(f"Invalid value for {key}: {error}") from error
        client_rate = client_rate or name == "traces_sample_rate"
    if client_rate and environ.get("SENTRY_TRACES_SAMPLE_RATE"):
        _LOG.warning("SENTRY_CLIENT_TRACES_SAMPLE_RATE wins over SENTRY_TRACES_SAMPLE_RATE")
    release = environ.get(_CLIENT_PREFIX + "RELEASE", "")
    if release and release != "latest":
        options["release"] = release
    elif conf.git_hash:
        options["release"] = conf.git_hash
    options["ignore_errors"] = list(
        _settings.as_list(environ.get(_CLIENT_PREFIX + "IGNORE_EXCEPTIONS") or "SystemExit")
    )
    return options


def _tags(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        key[len(_TAG_PREFIX) :].lower(): value
        for key, value in environ.items()
        if key.startswith(_TAG_PREFIX) and value
    }


def _integrations(conf: SentrySettings) -> list[Any]:
    integrations: list[Any] = []
    if conf.integration_logging:
        from sentry_sdk.integrations.logging import LoggingIntegration

        integrations.append(
            LoggingIntegration(level=logging.DEBUG, event_level=logging.getLevelName(conf.level))
        )
    if conf.integration_pyramid:
        from sentry_sdk.integrations.pyramid import PyramidIntegration

        integrations.append(PyramidIntegration())
    optional = (
        (
            conf.integration_sqlalchemy,
            "sqlalchemy",
            "sentry_sdk.integrations.sqlalchemy",
            "SqlalchemyIntegration",
        ),
        (conf.integration_redis, "redis", "sentry_sdk.integrations.redis", "RedisIntegration"),
        (conf.integration_asyncio, None, "sentry_sdk.integrations.asyncio", "AsyncioIntegration"),
    )
    import importlib
    import importlib.util

    for enabled, library, module, name in optional:
        if enabled and (library is None or importlib.util.find_spec(library) is not None):
            integrations.append(getattr(importlib.import_module(module), name)())
    return integrations


def _before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    del hint
    tags = event.setdefault("tags", {})
    for name, value in _STATE.tags.items():
        tags.setdefault(name, value)
    request = _context.current_request.get()
    if request is not None:
        request_id = getattr(request, "c2c_request_id", None)
        if request_id:
            tags.setdefault("request_id", request_id)
    trace = _context.current_trace.get()
    if trace is not None:
        event.setdefault("contexts", {}).setdefault("c2c_trace", {"trace_id": trace[0], "span_id": trace[1]})
    return event


def init(settings: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Initialise the Sentry SDK once per process, if ``SENTRY_URL`` is set.

    Args:
        settings: the Pyramid (ini) settings, for the ``c2c.sentry.*`` keys.
        environ: the environment (default ``os.environ``).

    Returns:
        Whether Sentry is enabled in this process.
    """
    environ = os.environ if environ is None else environ
    with _LOCK:
        if _STATE.initialized:
            return True
        conf = _settings.resolve(SentrySettings, settings, environ)
        url = conf.url or str((settings or {}).get("c2c.sentry_url") or "")
        if not url:
            return False
        conf = dataclasses.replace(conf, url=url)
        sentry_sdk = require("sentry_sdk", "sentry", "Sentry")
        from sentry_sdk.integrations import logging as sentry_logging

        options = client_options(conf, environ)
        _STATE.tags = _tags(environ)
        for logger in conf.excludes:
            # Like logging's hierarchy, excluding a logger excludes its children (fnmatch pattern).
            sentry_logging.ignore_logger(logger)
            sentry_logging.ignore_logger(logger + ".*")
        sentry_sdk.init(integrations=_integrations(conf), before_send=_before_send, **options)
        _STATE.options = options
        _STATE.initialized = True
        _LOG.info("Configured Sentry reporting (release %s)", options.get("release"))
        return True


def is_enabled() -> bool:
    """Whether the Sentry SDK was initialised by this module."""
    return _STATE.initialized


@_process_state.on_reset
def _reset(timeout: float = 2.0) -> None:
    """Flush and close the SDK client and forget the initialisation (for tests)."""
    with _LOCK:
        if not _STATE.initialized:
            return
        import sentry_sdk

        client = sentry_sdk.get_client()
        client.close(timeout=timeout)
        # ``sentry_sdk.Scope``'s class methods: the module-level ``get_*_scope`` functions only
        # exist from sentry-sdk 2.10 on, and applications pin 2.8.
        scope = sentry_sdk.Scope
        scope.get_global_scope().set_client(None)
        scope.get_isolation_scope().clear()
        scope.get_current_scope().clear()
        _STATE.initialized = False
        _STATE.options = {}
        _STATE.tags = {}


def _tag_request(event: Any) -> None:
    # The Pyramid integration reports a view's exception once it has left the tweens (where the
    # current request is no longer known): the tag goes on the request's own isolation scope.
    try:
        request_id = getattr(event.request, "c2c_request_id", None)
        if request_id:
            import sentry_sdk

            # ``set_tag`` writes on the isolation scope (sentry-sdk 2.0 and later).
            sentry_sdk.set_tag("request_id", request_id)
    except Exception:
        swallow("tagging the Sentry events with the request id")


def includeme(config: Any = None) -> None:
    """Initialise Sentry from the environment and, with ``config``, the application's settings.

    With ``config`` and the Pyramid integration enabled, each request's events get the tag
    ``request_id``.
    """
    if not init(config.registry.settings if config is not None else None) or config is None:
        return
    conf = _settings.resolve(SentrySettings, config.registry.settings)
    if conf.integration_pyramid:
        from pyramid.events import NewRequest

        config.add_subscriber(_tag_request, NewRequest)


@contextlib.contextmanager
def capture_exceptions() -> Iterator[None]:
    """Report an exception raised in the block to Sentry (when enabled), then re-raise it."""
    try:
        yield
    except Exception as exception:
        if _STATE.initialized:
            import sentry_sdk

            sentry_sdk.capture_exception(exception)
        raise


def filter_wsgi_app(application: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a WSGI application in Sentry's WSGI middleware when Sentry is enabled."""
    if not init():
        return application
    from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

    _LOG.info("Enabling the Sentry WSGI middleware")
    return SentryWsgiMiddleware(application)


def filter_factory(
    global_conf: Mapping[str, Any] | None = None, **local_conf: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """PasteDeploy filter factory of ``egg:c2cwsgiutils#sentry``.

    Args:
        global_conf: the ``[DEFAULT]`` section (its ``c2c.sentry.*`` keys are used).
        local_conf: the filter section (its keys win over ``global_conf``).

    Returns:
        A callable that wraps a WSGI application with :func:`filter_wsgi_app`.
    """
    init({**(global_conf or {}), **local_conf})
    return filter_wsgi_app
