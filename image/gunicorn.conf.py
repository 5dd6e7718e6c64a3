"""gunicorn settings of the c2cwsgiutils image (``/app/gunicorn.conf.py``, read from the working directory).

A service that needs other settings copies its own ``/app/gunicorn.conf.py`` that starts with the
same import.
"""

# From the library (c2cwsgiutils.gunicorn_config): bind :8080, gthread workers, workers from
# GUNICORN_WORKERS (default: from the container's CPU quota), threads from GUNICORN_THREADS (10),
# the application from --paste / C2CWSGIUTILS_CONFIG, logging from the ini file (JSON with
# LOG_TYPE=json), the access log without secrets, and the Prometheus hooks (on_starting,
# post_fork, child_exit). The graceful SIGTERM drain is C2C_HEALTH_CHECK_DRAIN_SECONDS (5 s by
# default: ENV in the Dockerfile): the health check installs it in each worker (post_worker_init
# below for preloaded workers). On SIGTERM the master closes its copy of the listening socket,
# the draining workers keep theirs open and accept until they stop.
import logging
import os
import signal
from typing import Any

from c2cwsgiutils import gunicorn_config
from c2cwsgiutils.gunicorn_config import *  # noqa: F403  # the library's settings are the base

# What the image adds for containers:
# - the workers' heartbeat files on a tmpfs, not on the overlay file system (which can block);
worker_tmp_dir = "/dev/shm"  # noqa: S108  # a tmpfs in every container, for heartbeats
# - on SIGTERM (docker stop), the workers get this long to stop, counted from the signal: the
#   drain (5 s), then the requests in flight finish; keep it below the platform's grace period
#   (docker stop: 10 s unless -t / stop_grace_period; Kubernetes: terminationGracePeriodSeconds,
#   30 s, which also counts a preStop hook's time);
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 25)
# - the worker timeout (a worker silent for longer is killed and replaced);
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
# - trust X-Forwarded-* from the proxies named in FORWARDED_ALLOW_IPS (gunicorn's own variable,
#   default 127.0.0.1); keep-alive behind a load balancer longer than its idle timeout.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE") or 5)
# - the application is loaded once, in the master, before the workers are forked
#   (GUNICORN_PRELOAD=0 loads it in each worker instead): with 2 workers, start-up takes about a
#   third less CPU and the workers share the memory of the loaded code (PSS a third lower;
#   figures in README.md). The library's Redis, broadcast and metrics state renews itself in forked workers.
#   What the application opens while it loads (database connections, files, threads) is
#   inherited by every worker: open nothing there, or set GUNICORN_PRELOAD=0 (also with --reload,
#   which cannot reload code loaded in the master).
preload_app = (os.environ.get("GUNICORN_PRELOAD") or "1").strip().lower() not in {"0", "false", "no", "off"}

_LOG = logging.getLogger("c2cwsgiutils.image")


def _drain_seconds() -> float:
    return float(os.environ.get("C2C_HEALTH_CHECK_DRAIN_SECONDS") or 0)


def on_starting(server: Any) -> None:
    """Master, before the workers: the library's hook (metrics server), and a check of the drain."""
    gunicorn_config.on_starting(server)
    installed = signal.getsignal(signal.SIGTERM) not in {signal.SIG_DFL, signal.SIG_IGN, None}
    if preload_app and installed and _drain_seconds() <= 0:
        _LOG.warning(
            "The application installed a SIGTERM handler (c2c.health_check.drain_seconds in the ini?) "
            "that preloaded workers do not keep: set C2C_HEALTH_CHECK_DRAIN_SECONDS or GUNICORN_PRELOAD=0"
        )


def post_worker_init(worker: Any) -> None:
    """Worker, after gunicorn set its signal handlers: re-arm the graceful drain of a preloaded app.

    The health check installs the drain (C2C_HEALTH_CHECK_DRAIN_SECONDS) while the application
    loads; preloaded, that happened in the master, and the worker's own handlers replaced it.
    """
    del worker
    seconds = _drain_seconds()
    if preload_app and seconds > 0:
        from c2cwsgiutils.health_check import drain_on_signal

        drain_on_signal(seconds)
