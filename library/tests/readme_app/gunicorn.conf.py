# A service's gunicorn.conf.py written as the reference README shows it: gunicorn's own logger and
# hooks calling prometheus_client directly, not c2cwsgiutils.gunicorn_config.
import os

from prometheus_client import multiprocess

from c2cwsgiutils import get_config_defaults, get_logconfig_dict, get_paste_config

bind = ":8080"

worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "10"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "100"))

preload = "true"

accesslog = "-"
access_log_format = os.environ.get(
    "GUNICORN_ACCESS_LOG_FORMAT",
    '%(H)s %({Host}i)s %(m)s %(U)s?%(q)s "%(f)s" "%(a)s" status:%(s)s size:%(B)s duration:%(D)s',
)

paste = get_paste_config()
wsgi_app = paste

raw_paste_global_conf = ["=".join(e) for e in get_config_defaults().items()]

logconfig_dict = get_logconfig_dict(paste)


def on_starting(server):
    from c2cwsgiutils import prometheus

    del server

    prometheus.start()


def post_fork(server, worker):
    from c2cwsgiutils import prometheus

    del server, worker

    prometheus.cleanup()


def child_exit(server, worker):
    del server

    multiprocess.mark_process_dead(worker.pid)
