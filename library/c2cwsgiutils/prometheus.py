"""Prometheus metrics of the service: gunicorn multiprocess mode and waitress single-process mode.

gunicorn (``gunicorn.conf.py``, as :mod:`c2cwsgiutils.gunicorn_config` does)::

    def on_starting(server):  # master
        prometheus.start()

    def post_fork(server, worker):
        prometheus.cleanup()

    def child_exit(server, worker):
        prometheus.mark_process_dead(worker.pid)

:func:`start` serves the metrics of all the workers on ``C2C_PROMETHEUS_PORT`` (any path) from the
files of ``PROMETHEUS_MULTIPROC_DIR``, which it empties first. Beyond the reference: the counts
of dead workers are archived in the master's memory and their files removed, also when
``child_exit`` only calls prometheus_client's ``mark_process_dead`` (bounded file count,
monotonic totals, gauges of dead workers gone), and the workers' process and GC metrics are
written to the files by :func:`includeme`, so a scrape never waits for the workers (see
:mod:`._prometheus_multiproc`).

waitress or any single process: :func:`start_single_process`.

The metrics port has no authentication: it is for Prometheus inside the cluster, never to be
published. ``C2C_PROMETHEUS_BIND`` (default ``0.0.0.0``, every IPv4 interface, as Prometheus
scrapes pods directly) restricts it to one address (``127.0.0.1``, ``::1``; ``::`` for every
interface, IPv6 and IPv4).

Settings (environment only, read once, on first use): ``C2C_PROMETHEUS_PORT``, ``C2C_PROMETHEUS_BIND``,
``C2C_PROMETHEUS_PREFIX`` (``c2cwsgiutils_``), ``C2C_PROMETHEUS_PACKAGES``,
``C2C_PROMETHEUS_APPLICATION_PACKAGE``, ``C2C_PROMETHEUS_MAX_LABEL_VALUES`` (200),
``C2C_PROMETHEUS_WORKER_INTERVAL`` (seconds between two samples of a worker's process metrics,
and of the processes' memory by the master, default 5), ``C2C_PROMETHEUS_BROADCAST_TIMEOUT``
(seconds, default 10).

.. versionadded:: 6.0
.. versionchanged:: 6.2
   Archive of dead workers, process metrics without broadcasts, ``start_single_process``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from c2cwsgiutils import _metrics, _process_state, _prometheus_multiproc, _settings
from c2cwsgiutils._prometheus_collectors import (
    MULTI_PROCESS_COLLECTOR_BROADCAST_CHANNELS,
    MemoryInfoCollector,
    MemoryMapCollector,
    MultiProcessCustomCollector,
    ResourceCollector,
    SerializedMetric,
    SerializedSample,
    serialize_collected_data,
)

__all__ = [
    "MULTI_PROCESS_COLLECTOR_BROADCAST_CHANNELS",
    "MemoryInfoCollector",
    "MemoryMapCollector",
    "MultiProcessCustomCollector",
    "PrometheusSettings",
    "ResourceCollector",
    "SerializedMetric",
    "SerializedSample",
    "build_metric_name",
    "cleanup",
    "includeme",
    "mark_process_dead",
    "serialize_collected_data",
    "start",
    "start_single_process",
]

_LOG = logging.getLogger(__name__)


@_settings.frozen_dataclass
class PrometheusSettings:
    """Process-wide settings of the metrics server (environment only)."""

    port: int = _settings.knob(
        0,
        env="C2C_PROMETHEUS_PORT",
        convert=int,
        doc="Port of the Prometheus metrics server; off when unset.",
    )
    bind: str = _settings.knob(
        "0.0.0.0",  # noqa: S104  # the reference's default: Prometheus scrapes the pods directly
        env="C2C_PROMETHEUS_BIND",
        doc="Address the metrics server listens on: `0.0.0.0` every IPv4 interface, `::` every "
        "interface, `127.0.0.1` or `::1` this machine only. The port has no authentication: never "
        "publish it.",
    )
    multiproc_dir: str = _settings.knob(
        "", env="PROMETHEUS_MULTIPROC_DIR", doc="Directory of prometheus_client's multiprocess files."
    )
    worker_interval: float = _settings.knob(
        5.0,
        env="C2C_PROMETHEUS_WORKER_INTERVAL",
        convert=float,
        doc="Seconds between two samples of a gunicorn worker's process and GC metrics, and of the "
        "processes' memory (process_smap_pss_bytes) by the master.",
    )
    broadcast_timeout: float = _settings.knob(
        10.0,
        env="C2C_PROMETHEUS_BROADCAST_TIMEOUT",
        convert=float,
        doc="Seconds a scrape waits for the workers' answers on the broadcast channels.",
    )


class _State:
    """The process's metrics server and sampler."""

    def __init__(self) -> None:
        self.settings: PrometheusSettings | None = None
        self.server: Any = None
        self.sampler: _prometheus_multiproc.WorkerSampler | None = None
        self.single_process_registered = False


_STATE = _State()
_LOCK = threading.RLock()


def _conf() -> PrometheusSettings:
    with _LOCK:
        if _STATE.settings is None:
            _STATE.settings = _settings.resolve(PrometheusSettings, None, os.environ)
        return _STATE.settings


def build_metric_name(postfix: str) -> str:
    """Return ``C2C_PROMETHEUS_PREFIX`` (default ``c2cwsgiutils_``) + ``postfix``."""
    return _metrics.settings().prefix + postfix


class _QuietHandler(WSGIRequestHandler):
    """A scrape is not worth a line on stderr (wsgiref logs every request there)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # wsgiref's signature
        del format, args


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def _serve(registry: Any, host: str, port: int) -> None:
    # The server is ours, around prometheus_client's documented ``make_wsgi_app``: its
    # ``start_http_server`` returns the server only from 0.19 on, and the ones before can not be
    # stopped or told apart from "not started".
    from prometheus_client import make_wsgi_app

    host = host.strip("[]")  # "[::1]" as in a URL
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        server_class = _ThreadingServer6 if family == socket.AF_INET6 else _ThreadingServer
        server = make_server(host, port, make_wsgi_app(registry), server_class, handler_class=_QuietHandler)
    except OSError as error:
        raise OSError(
            f"Cannot serve the metrics on {host!r} (C2C_PROMETHEUS_BIND), port {port}: {error}"
        ) from error
    thread = threading.Thread(target=server.serve_forever, name="c2c-prometheus-server", daemon=True)
    thread.start()
    _STATE.server = (server, thread)
    _LOG.info("Serving the Prometheus metrics on %s port %s", host, port)


def start(registry: Any = None) -> None:
    """Serve the metrics of every gunicorn worker on ``C2C_PROMETHEUS_PORT`` (call in ``on_starting``).

    Nothing happens when ``C2C_PROMETHEUS_PORT`` is not set.

    Args:
        registry: the ``CollectorRegistry`` to serve (default: a new one).
    """
    conf = _conf()
    if not conf.port:
        return
    from prometheus_client import CollectorRegistry, PlatformCollector

    with _LOCK:
        _metrics.most_recent_mode()  # decided (and warned about) once, before the workers fork
        if registry is None:
            registry = CollectorRegistry()
        registry.register(MemoryMapCollector(interval=conf.worker_interval))
        PlatformCollector(registry=registry)
        registry.register(MultiProcessCustomCollector(conf.broadcast_timeout))
        if conf.multiproc_dir:
            os.makedirs(conf.multiproc_dir, exist_ok=True)
            removed = _prometheus_multiproc.empty_directory(conf.multiproc_dir)
            _LOG.debug("Removed %s files from %s", removed, conf.multiproc_dir)
            registry.register(_prometheus_multiproc.ArchivingCollector(conf.multiproc_dir))
        else:
            _LOG.warning("PROMETHEUS_MULTIPROC_DIR is not set: the metrics of the workers are not served")
        _serve(registry, conf.bind, conf.port)


def mark_process_dead(pid: int) -> None:
    """Archive the metrics of a dead worker and remove its files (call in gunicorn's ``child_exit``)."""
    conf = _conf()
    if conf.multiproc_dir and os.path.isdir(conf.multiproc_dir):
        _prometheus_multiproc.mark_process_dead(pid, conf.multiproc_dir)


def cleanup() -> None:
    """Forget what the worker inherited from the master (call in gunicorn's ``post_fork``).

    The master's metrics server is not the worker's; the worker's sampler thread is (re)started.
    The Redis clients and the broadcaster need nothing here: they renew their connections and
    threads in a forked child by themselves (``os.register_at_fork``), keeping the subscriptions
    made before the fork (gunicorn ``--preload``).
    """
    with _LOCK:
        _STATE.server = None
        if _STATE.sampler is not None:
            _STATE.sampler.start()


def _start_sampler() -> None:
    conf = _conf()
    if not conf.multiproc_dir:
        return  # single process: prometheus_client's default registry has the process metrics
    with _LOCK:
        if _STATE.sampler is None:
            _STATE.sampler = _prometheus_multiproc.WorkerSampler(conf.worker_interval)
            sampler = _STATE.sampler
            os.register_at_fork(after_in_child=sampler.start)
        _STATE.sampler.start()


def includeme(config: Any = None) -> None:
    """In a gunicorn worker (multiprocess mode), write its process and GC metrics to the files."""
    del config
    _start_sampler()


def start_single_process(registry: Any = None) -> None:
    """Serve the metrics of this single process (waitress) on ``C2C_PROMETHEUS_PORT``.

    Adds :class:`ResourceCollector` and :class:`MemoryInfoCollector` (with psutil) to the registry
    (default: prometheus_client's default registry, which has the process and GC metrics).
    """
    from prometheus_client import REGISTRY

    with _LOCK:
        registry = REGISTRY if registry is None else registry
        if not _STATE.single_process_registered:
            registry.register(ResourceCollector())
            try:
                import psutil  # noqa: F401  # only checks that the debug extra is installed
            except ImportError:
                _LOG.info("psutil is not installed: no python_memory_info metric")
            else:
                registry.register(MemoryInfoCollector())
            _STATE.single_process_registered = True
        conf = _conf()
        if conf.port and _STATE.server is None:
            _serve(registry, conf.bind, conf.port)


@_process_state.on_reset
def _reset() -> None:
    """Stop the server and the sampler and forget the settings (for tests)."""
    with _LOCK:
        if _STATE.server is not None:
            server, thread = _STATE.server
            server.shutdown()
            server.server_close()
            thread.join(5)
        if _STATE.sampler is not None:
            _STATE.sampler.stop()
        _STATE.settings = None
        _STATE.server = None
        _STATE.sampler = None
        _STATE.single_process_registered = False
