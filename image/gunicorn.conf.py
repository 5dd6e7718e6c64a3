"""gunicorn settings of the c2cwsgiutils image (``/app/gunicorn.conf.py``, read from the working directory).

A service that needs other settings copies its own ``/app/gunicorn.conf.py`` that starts with the
same import.
"""

# From the library (c2cwsgiutils.gunicorn_config): bind :8080, gthread workers, workers from
# GUNICORN_WORKERS (default: from the container's CPU quota), threads from GUNICORN_THREADS (10),
# the application from --paste / C2CWSGIUTILS_CONFIG, logging from the ini file (JSON with
# LOG_TYPE=json), the access log without secrets, and the Prometheus hooks (on_starting,
# post_fork, child_exit). The graceful SIGTERM drain is C2C_HEALTH_CHECK_DRAIN_SECONDS (the
# health check installs it in each worker).
import os

from c2cwsgiutils.gunicorn_config import *  # noqa: F403  # the library's settings are the base

# What the image adds for containers:
# - the workers' heartbeat files on a tmpfs, not on the overlay file system (which can block);
worker_tmp_dir = "/dev/shm"  # noqa: S108  # a tmpfs in every container, for heartbeats
# - on SIGTERM (docker stop), the in-flight requests get this long to finish; keep it below the
#   platform's grace period (docker stop: 10 s unless -t / stop_grace_period; Kubernetes: 30 s);
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 25)
# - the worker timeout (a worker silent for longer is killed and replaced);
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
# - trust X-Forwarded-* from the proxies named in FORWARDED_ALLOW_IPS (gunicorn's own variable,
#   default 127.0.0.1); keep-alive behind a load balancer longer than its idle timeout.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE") or 5)
