"""A c2cwsgiutils 6 service as the reference README writes it: its own main, ini and gunicorn.conf.py."""

import logging
import os

from pyramid.config import Configurator

import c2cwsgiutils.health_check
from c2cwsgiutils import services

_LOG = logging.getLogger(__name__)
hello_service = services.create("hello", "/hello")


@hello_service.get()
def hello_get(request):
    """Log a line, then answer with the request id the library gave the request and the worker's pid."""
    _LOG.info("hello from the view of %s", request.c2c_request_id)
    return {"hello": "world", "request_id": request.c2c_request_id, "pid": os.getpid()}


def gunicorn_command(bind: str) -> list[str]:
    """The command that serves this service as its README says: gunicorn, its config, its ini."""
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    gunicorn = Path(sys.executable).parent / "gunicorn"
    config, ini = here / "gunicorn.conf.py", here / "production.ini"
    return [str(gunicorn), "--config", str(config), "--paste", str(ini), "--bind", bind]


def main(global_config, **settings):
    """The main function of the README."""
    del global_config
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    config.scan(__name__)
    health_check = c2cwsgiutils.health_check.HealthCheck(config)
    health_check.add_custom_check("custom", lambda request: "happy", level=2)
    return config.make_wsgi_app()
