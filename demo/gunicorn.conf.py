# gunicorn settings of the demo: the library's defaults (JSON logs with LOG_TYPE=json, access log
# without secrets, logging configuration from the ini file), with one worker for a laptop.
from c2cwsgiutils.gunicorn_config import *  # noqa: F403

workers = 1
threads = 4
