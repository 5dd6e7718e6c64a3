# The gunicorn configuration of a service: the library's defaults, then the service's overrides.
from c2cwsgiutils.gunicorn_config import *  # noqa: F403

workers = 1
threads = 2
