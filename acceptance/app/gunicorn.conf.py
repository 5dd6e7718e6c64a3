"""gunicorn settings of the acceptance application: the image's, plus a custom metrics collector."""

from typing import Any

from c2cwsgiutils import prometheus
from c2cwsgiutils.gunicorn_config import *  # noqa: F403  # the library's settings are the base

worker_tmp_dir = "/dev/shm"  # noqa: S108  # heartbeats on a tmpfs, as the base image does
graceful_timeout = 25


def on_starting(server: Any) -> None:
    """Serve the workers' metrics plus those of a host-level custom collector (master process)."""
    del server
    from acceptance_app.metrics import CustomCollector
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(CustomCollector())
    prometheus.start(registry)
