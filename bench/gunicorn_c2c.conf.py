"""gunicorn settings of the benchmark's c2c variant: the library's, as a service's gunicorn.conf.py.

``c2cwsgiutils.gunicorn_config`` reads ``C2CWSGIUTILS_CONFIG`` (``bench/production.ini``): the
application behind the client_info filter, JSON logs (the access log too) and the Prometheus
hooks (``PROMETHEUS_MULTIPROC_DIR`` is set by the harness). Only the address and the worker
counts come from the harness.
"""

import os

from c2cwsgiutils.gunicorn_config import *  # noqa: F403  # the library's settings are the base

bind = os.environ["BENCH_BIND"]
workers = int(os.environ["BENCH_WORKERS"])
threads = int(os.environ["BENCH_THREADS"])
