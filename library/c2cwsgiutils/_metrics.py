"""The library's Prometheus metrics, defined in one place and created on first use.

Nothing is registered at import time: :func:`get` creates the metrics on the registry given to
:func:`use_registry` (default: prometheus_client's default registry) the first time a capability
needs them. Timings are wall-clock histograms (``_count``/``_sum`` as the reference's summaries,
plus ``_bucket``). Label values are bounded: see :class:`BoundedLabel`.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from c2cwsgiutils import _process_state, _settings, _versions

__all__ = ["BoundedLabel", "Metrics", "MetricsSettings", "get", "settings", "use_registry", "version_gauge"]

OTHER = "_other"
"""Label value that replaces the values over the cap of a :class:`BoundedLabel`."""


@_settings.frozen_dataclass
class MetricsSettings:
    """Process-wide settings of the metrics (environment only, resolved once, on first use)."""

    prefix: str = _settings.knob(
        "c2cwsgiutils_", env="C2C_PROMETHEUS_PREFIX", doc="Prefix of the library's metric names."
    )
    packages: tuple[str, ...] = _settings.knob(
        ("c2cwsgiutils", "pyramid", "gunicorn", "SQLAlchemy"),
        env="C2C_PROMETHEUS_PACKAGES",
        convert=_settings.as_list,
        doc="Packages whose version is a label of the version gauge.",
    )
    application_package: str = _settings.knob(
        "",
        env="C2C_PROMETHEUS_APPLICATION_PACKAGE",
        doc="Package whose version is the `application` label of the version gauge.",
    )
    max_label_values: int = _settings.knob(
        200,
        env="C2C_PROMETHEUS_MAX_LABEL_VALUES",
        convert=int,
        doc="Distinct values kept per unbounded label (SQL statements, hosts); the others are `_other`.",
    )


class BoundedLabel:
    """Keep at most ``cap`` distinct values of a label; later new values become ``_other``."""

    def __init__(self, cap: int) -> None:
        """Create an empty set of known values."""
        self._cap = cap
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        """Return ``value`` if it is known or there is room for it, else ``_other``."""
        if value in self._known:
            return value
        with self._lock:
            if value in self._known:
                return value
            if len(self._known) >= self._cap:
                return OTHER
            self._known.add(value)
            return value


# The collectors created on each registry, by name: a registry never gets the same metric twice,
# even when the library's metrics are created again (another prefix, tests).
_COLLECTORS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_COLLECTORS_LOCK = threading.Lock()


def _once(registry: Any, name: str, factory: Callable[[], Any]) -> Any:
    with _COLLECTORS_LOCK:
        created = _COLLECTORS.setdefault(registry, {})
        collector = created.get(name)
        if collector is None:
            collector = created[name] = factory()
        return collector


def _histogram(registry: Any, name: str, documentation: str, labels: tuple[str, ...]) -> Any:
    from prometheus_client import Histogram

    return _once(registry, name, lambda: Histogram(name, documentation, labels, registry=registry))


def _gauge(
    registry: Any,
    name: str,
    documentation: str,
    labels: tuple[str, ...],
    mode: Literal["liveall", "livemostrecent"],
) -> Any:
    from prometheus_client import Gauge

    chosen = most_recent_mode() if mode == "livemostrecent" else mode
    return _once(
        registry,
        name,
        lambda: Gauge(name, documentation, labels, registry=registry, multiprocess_mode=chosen),
    )


_MOST_RECENT: list[Literal["livemostrecent", "livemax"]] = []


def most_recent_mode() -> Literal["livemostrecent", "livemax"]:
    """``livemostrecent``, or ``livemax`` with prometheus-client before 0.18 (warned once per process).

    Called by the gunicorn master too (``prometheus.start``): its forked workers then inherit the
    answer and do not warn again.
    """
    if not _MOST_RECENT:
        from prometheus_client import Gauge

        try:
            # With a label, no value (and in multiprocess mode no file) is created.
            Gauge("c2c_mode_probe", "probe", ("probe",), registry=None, multiprocess_mode="livemostrecent")
            _MOST_RECENT.append("livemostrecent")
        except ValueError:
            # The highest value of the live processes is the closest, and what the reference used.
            _MOST_RECENT.append("livemax")
            logging.getLogger(__name__).warning(
                "prometheus-client %s has no multiprocess mode 'livemostrecent' (0.18 and later): "
                "the health_check_failure gauge shows the highest value of the live processes",
                _versions.installed("prometheus-client"),
            )
    return _MOST_RECENT[0]


class Metrics:
    """The library's metrics on one registry."""

    def __init__(self, registry: Any, conf: MetricsSettings) -> None:
        """Create (and register) the metrics on ``registry``."""
        prefix = conf.prefix
        http_labels = ("method", "route", "status", "group")
        self.registry = registry
        self.settings = conf

        def histogram(name: str, documentation: str, labels: tuple[str, ...]) -> Any:
            return _histogram(registry, prefix + name, documentation, labels)

        self.requests_seconds = histogram(
            "requests_seconds",
            "Duration of the outgoing HTTP requests (requests library)",
            ("scheme", "hostname", "port", "method", "status", "group"),
        )
        self.redis_seconds = histogram("redis_seconds", "Duration of the Redis commands", ("command",))
        self.database_seconds = histogram(
            "database_seconds", "Duration of the SQL statements", ("what", "engine")
        )
        self.pyramid_routes_seconds = histogram(
            "pyramid_routes_seconds", "Duration of the Pyramid routes", http_labels
        )
        self.pyramid_render_seconds = histogram(
            "pyramid_render_seconds", "Duration of the Pyramid renderers", http_labels
        )
        self.health_check_db_seconds = histogram(
            "health_check_db_seconds",
            "Duration of the database health checks",
            ("configuration", "connection", "check"),
        )
        self.health_check_failure = _gauge(
            registry,
            prefix + "health_check_failure",
            "1 when the last run of the health check failed, 0 when it passed",
            ("name",),
            # The most recent result among the live processes (the reference broadcast each success).
            "livemostrecent",
        )
        self.alembic_version = _gauge(
            registry,
            prefix + "alembic_version",
            "Alembic version of the database (value 1)",
            ("version", "name", "configuration"),
            "liveall",
        )
        self.hosts = BoundedLabel(conf.max_label_values)
        self.statements = BoundedLabel(conf.max_label_values)
        self.redis_commands = BoundedLabel(conf.max_label_values)

    def series(self, histogram: Any, labels: Mapping[str, str]) -> Any:
        """The series of one of these histograms with ``labels``: an object with ``observe(seconds)``."""
        del self
        return histogram.labels(**labels)

    def version_gauge(self, labels: Iterable[str]) -> Any:
        """Return the gauge ``<prefix>version`` with these label names (created once per registry)."""
        from prometheus_client import Gauge

        names = tuple(labels)
        name = self.settings.prefix + "version"

        def create() -> Any:
            return Gauge(
                name,
                "Version of the running application",
                names,
                registry=self.registry,
                multiprocess_mode="liveall",
            )

        return _once(self.registry, name, create)


class _State:
    """The metrics of the process."""

    __slots__ = ("metrics", "registry", "settings")

    def __init__(self) -> None:
        self.registry: Any = None
        self.metrics: Metrics | None = None
        self.settings: MetricsSettings | None = None


_STATE = _State()
_LOCK = threading.Lock()


def settings() -> MetricsSettings:
    """Return the metrics settings, read from the environment on the first call."""
    conf = _STATE.settings
    if conf is None:
        with _LOCK:
            if _STATE.settings is None:
                _STATE.settings = _settings.resolve(MetricsSettings, None, os.environ)
            conf = _STATE.settings
    return conf


def get() -> Metrics:
    """Return the library's metrics, created on the chosen registry on the first call."""
    metrics = _STATE.metrics
    if metrics is None:
        conf = settings()
        with _LOCK:
            if _STATE.metrics is None:
                registry = _STATE.registry
                if registry is None:
                    from prometheus_client import REGISTRY

                    registry = REGISTRY
                _STATE.metrics = Metrics(registry, conf)
            metrics = _STATE.metrics
    return metrics


@_process_state.on_reset
def _reset() -> None:
    use_registry(None, reread_settings=True)


def use_registry(registry: Any, reread_settings: bool = False) -> None:
    """Create the library's metrics on ``registry`` from now on (tests, applications with their own).

    Args:
        registry: a ``prometheus_client.CollectorRegistry``; ``None`` for the default registry.
        reread_settings: read the environment again (the prefix, the packages...).
    """
    with _LOCK:
        _STATE.registry = registry
        _STATE.metrics = None
        if reread_settings:
            _STATE.settings = None


def version_gauge(labels: Iterable[str]) -> Any:
    """Return the gauge ``<prefix>version`` with these label names."""
    return get().version_gauge(labels)
