"""Engines of ``c2cwsgiutils.db`` survive a connection the PostgreSQL server closed (pool pre-ping)."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy
import sqlalchemy.exc
import webtest

from c2cwsgiutils import db, testing


def _libpq(url):
    return "postgresql://" + url.split("://", 1)[1]


def _terminate(url, pid):
    """End the backend ``pid`` from another connection of the same role, waiting until it is gone."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()[0]


def _pid(request):
    return {"pid": request.dbsession.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar()}


@pytest.fixture
def app_with_db(postgresql):
    """``app_with_db(settings)``: a WebTest app with ``db.init`` and ``GET /pid``; engines disposed after."""
    engines = []

    def build(settings):
        def configure(config):
            factory = db.init(config, "sqlalchemy", "sqlalchemy_slave")
            engines.extend({factory.rw_engine, factory.ro_engine})
            config.add_route("pid", "/pid")
            config.add_view(_pid, route_name="pid", renderer="fast_json")

        base = {"sqlalchemy.url": postgresql.url_rw, "sqlalchemy_slave.url": postgresql.url_ro}
        return webtest.TestApp(testing.make_app({**base, **settings}, configure=configure))

    yield build
    for engine in engines:
        engine.dispose()


@pytest.mark.parametrize(
    ("env", "settings"),
    [
        (None, {}),
        ("false", {"sqlalchemy_slave.pool_pre_ping": "true"}),  # the explicit engine setting wins
    ],
)
def test_a_request_after_the_database_closed_its_connection_succeeds(
    postgresql, app_with_db, monkeypatch, env, settings
):
    """The pooled connection was terminated by the server: the next request gets a new one and answers."""
    if env is not None:
        monkeypatch.setenv("C2C_SQLALCHEMY_POOL_PRE_PING", env)
    client = app_with_db(settings)
    pid = client.get("/pid").json["pid"]  # the connection goes back to the replica engine's pool
    _terminate(postgresql.url_ro, pid)
    assert client.get("/pid").json["pid"] != pid


@pytest.mark.parametrize(
    ("env", "settings"),
    [
        ("false", {}),
        (None, {"sqlalchemy_slave.pool_pre_ping": "false"}),
    ],
)
def test_without_pre_ping_the_first_request_fails_once(postgresql, app_with_db, monkeypatch, env, settings):
    """Pre-ping off (the 6.0 behaviour): the first request after the termination fails, the next one works."""
    if env is not None:
        monkeypatch.setenv("C2C_SQLALCHEMY_POOL_PRE_PING", env)
    client = app_with_db(settings)
    pid = client.get("/pid").json["pid"]
    _terminate(postgresql.url_ro, pid)
    with pytest.raises(sqlalchemy.exc.OperationalError):
        client.get("/pid")
    assert client.get("/pid").json["pid"] != pid


@pytest.mark.parametrize(("env", "survives"), [(None, True), ("false", False)])
def test_get_engine_pre_pings_by_default(postgresql, monkeypatch, env, survives):
    """A script's engine (``db.get_engine``) replaces a connection the server closed, unless turned off."""
    if env is not None:
        monkeypatch.setenv("C2C_SQLALCHEMY_POOL_PRE_PING", env)
    engine = db.get_engine({"sqlalchemy.url": postgresql.url_rw})
    try:
        with engine.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        _terminate(postgresql.url_rw, pid)
        if survives:
            with engine.connect() as connection:
                assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != pid
        else:
            with pytest.raises(sqlalchemy.exc.OperationalError), engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()


def test_deprecated_create_session_pre_pings_by_default(postgresql):
    """The engines of the deprecated ``db.create_session`` also replace a connection the server closed."""
    holder = {}

    def configure(config):
        with pytest.deprecated_call():
            holder["session"] = db.create_session(config, "legacy", postgresql.url_rw)

        def view(request):
            return {"pid": holder["session"].execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar()}

        config.add_route("pid", "/pid")
        config.add_view(view, route_name="pid", renderer="fast_json")

    client = webtest.TestApp(testing.make_app({}, configure=configure))
    try:
        pid = client.get("/pid").json["pid"]
        _terminate(postgresql.url_rw, pid)
        assert client.get("/pid").json["pid"] != pid
    finally:
        holder["session"].c2c_rw_bind.dispose()
