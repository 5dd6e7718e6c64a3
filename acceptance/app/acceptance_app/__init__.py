"""The acceptance test application: uses every capability of c2cwsgiutils, as a real service would."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import c2cwsgiutils.db
from c2cwsgiutils import prometheus
from c2cwsgiutils.health_check import HealthCheck, JsonCheckException
from pyramid.config import Configurator

from acceptance_app import models

_LOG = logging.getLogger(__name__)
ALEMBIC_INI = "/app/alembic.ini"


def _failing_check(request: Any) -> None:
    """A level-3 check that always fails with a JSON result (``JsonCheckException``)."""
    del request
    raise JsonCheckException("this check always fails", {"reason": "on purpose"})


def _count_hello(session: Any) -> int:
    """Query of the database checks: the table has the rows of the migration."""
    import sqlalchemy

    return int(session.execute(sqlalchemy.select(sqlalchemy.func.count(models.Hello.id))).scalar_one())


def main(global_config: dict[str, str], **settings: Any) -> Any:
    """Build the WSGI application (``use = egg:acceptance_app`` style, via ``call:acceptance_app:main``)."""
    del global_config
    with Configurator(settings=settings) as config:
        config.include("c2cwsgiutils.pyramid")
        dbsession = c2cwsgiutils.db.init(
            config, "sqlalchemy", "sqlalchemy_slave", force_master=[r"GET /api/db/primary"], force_slave=None
        )
        config.include("acceptance_app.views")
        config.scan("acceptance_app.views")

        health_check = HealthCheck(config)
        health_check.add_db_session_check(dbsession, query_cb=_count_hello, level=1)
        health_check.add_alembic_check(dbsession, ALEMBIC_INI, level=2)
        health_check.add_url_check("http://localhost:8080/api/ping", name="ping", level=2)
        health_check.add_custom_check("fine", lambda _request: "fine", level=1)
        health_check.add_custom_check("fails", _failing_check, level=3)
        if "gunicorn" not in sys.modules:
            # waitress (pserve): one process serves its own metrics; gunicorn's master does it for the
            # workers (gunicorn.conf.py).
            prometheus.start_single_process()
        _LOG.info("acceptance_app started in process %s", os.getpid())
        return config.make_wsgi_app()
