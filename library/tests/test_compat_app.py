"""An application written for c2cwsgiutils 6, as the seed README shows it, runs unchanged."""

from __future__ import annotations

import os

import sqlalchemy
import webtest
from pyramid.config import Configurator

import c2cwsgiutils.db
import c2cwsgiutils.health_check
from c2cwsgiutils import services

_ALEMBIC_INI = os.path.join(os.path.dirname(__file__), "alembic_app", "alembic.ini")

hello_service = services.create("hello", "/hello", cors_credentials=True)


@hello_service.get()
def hello_get(request):
    """Read through the request's session (routed to the replica for a GET)."""
    return {"hello": request.dbsession.execute(sqlalchemy.text("SELECT current_user")).scalar()}


def main(global_config, **settings):
    """The main function of the seed README, line for line."""
    del global_config
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    dbsession = c2cwsgiutils.db.init(config, "sqlalchemy", "sqlalchemy_slave")

    config.scan(__name__)

    # Initialize the health checks
    health_check = c2cwsgiutils.health_check.HealthCheck(config)
    health_check.add_db_session_check(dbsession)
    health_check.add_alembic_check(dbsession, _ALEMBIC_INI, 1)
    return config.make_wsgi_app()


def test_readme_application_runs_unchanged(postgresql):
    """The README's five lines give a working app: health checks on both engines and alembic."""
    from alembic import command
    from alembic.config import Config

    alembic_config = Config(_ALEMBIC_INI)
    alembic_config.set_main_option("sqlalchemy.url", postgresql.url_rw)
    command.upgrade(alembic_config, "head")

    wsgi_app = main(
        {},
        **{
            "sqlalchemy.url": postgresql.url_rw,
            "sqlalchemy_slave.url": postgresql.url_ro,
            "c2c.enable_exception_handling": "1",
            "c2c.secret": "compat-secret",
        },
    )
    factory = wsgi_app.registry["dbsession_factory"]
    app = webtest.TestApp(wsgi_app)
    try:
        _check(app)
    finally:
        factory.ro_engine.dispose()
        factory.rw_engine.dispose()


def _check(app):
    """The health check, a DB view on the replica and the index page answer."""
    # The checks' results are for the authorised (see C2C_HEALTH_CHECK_PUBLIC_DETAILS).
    report = app.get("/c2c/health_check", headers={"X-API-Key": "compat-secret"}).json
    assert report["failures"] == {}
    assert set(report["successes"]) >= {"db_engine_sqlalchemy", "db_engine_sqlalchemy_slave"}
    alembic_check = "alembic_" + _ALEMBIC_INI.replace("/", "_").strip("_") + "_alembic"
    assert report["successes"][alembic_check]["result"] == "b2c3d4e5f6a7"
    assert app.get("/hello").json == {"hello": "app_ro"}
    assert app.get("/c2c").status_int == 200
