"""Database, alembic and draining health checks against a real PostgreSQL server."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import psycopg
import pytest
import sqlalchemy
import sqlalchemy.orm
import webtest

from c2cwsgiutils import db, health_check, testing

_ALEMBIC_INI = os.path.join(os.path.dirname(__file__), "alembic_app", "alembic.ini")
_ALEMBIC_NAME = "alembic_" + _ALEMBIC_INI.replace("/", "_").strip("_") + "_alembic"
_SECRET = "a-db-health-secret"
_AUTH = {"X-API-Key": _SECRET}


class Base(sqlalchemy.orm.DeclarativeBase):
    """Models of the tests."""


class Thing(Base):
    """A model with a table that may be empty."""

    __tablename__ = "thing"
    id: sqlalchemy.orm.Mapped[int] = sqlalchemy.orm.mapped_column(primary_key=True)


@pytest.fixture
def things(postgresql):
    """The empty table ``thing``."""
    with psycopg.connect(postgresql.url_rw, autocommit=True) as conn:
        conn.execute("CREATE TABLE thing (id int PRIMARY KEY)")
    return postgresql


@pytest.fixture
def draining():
    """Leave the process not draining after the test."""
    yield
    health_check.stop_draining()


def _app(postgresql, setup, settings=None, slave=True):
    """An application whose ``setup(health_check, factory)`` registers the checks."""
    holder = {}
    settings = {
        "sqlalchemy.url": postgresql.url_rw,
        "sqlalchemy_slave.url": postgresql.url_ro if slave else postgresql.url_rw,
        "c2c.health_check.timeout": "3",
        "c2c.secret": _SECRET,
        **(settings or {}),
    }

    def configure(config):
        factory = db.init(config, "sqlalchemy", "sqlalchemy_slave")
        checks = health_check.HealthCheck(config)
        setup(checks, factory)
        holder.update(factory=factory, checks=checks)

    app = webtest.TestApp(testing.make_app(settings, configure=configure))
    yield app, holder
    for engine in {holder["factory"].rw_engine, holder["factory"].ro_engine}:
        engine.dispose()


@pytest.fixture
def make_app(postgresql):
    """Build applications with ``make_app(setup, settings=None, slave=True)``; engines disposed at the end."""
    generators = []

    def build(setup, settings=None, slave=True):
        generator = _app(postgresql, setup, settings, slave)
        generators.append(generator)
        return next(generator)

    yield build
    for generator in generators:
        next(generator, None)


def test_one_check_per_engine_named_after_it(make_app):
    """The primary and the replica each get a ``db_engine_<name>`` check that passes."""
    app, _ = make_app(lambda checks, factory: checks.add_db_session_check(factory))
    report = app.get("/c2c/health_check").json
    assert report["failures"] == {}
    assert set(report["successes"]) == {"db_engine_sqlalchemy", "db_engine_sqlalchemy_slave"}
    assert report["successes"]["db_engine_sqlalchemy"]["level"] == 1


def test_same_primary_and_replica_give_one_check(make_app):
    """When the replica URL is the primary's, a single check is registered."""
    app, holder = make_app(lambda checks, factory: checks.add_db_session_check(factory), slave=False)
    assert holder["checks"].names == ["db_engine_sqlalchemy"]
    assert app.get("/c2c/health_check").json["failures"] == {}


@pytest.mark.parametrize(
    ("engine_type", "names"),
    [
        (health_check.EngineType.READ_ONLY, ["db_engine_sqlalchemy_slave"]),
        (health_check.EngineType.WRITE_ONLY, ["db_engine_sqlalchemy"]),
    ],
)
def test_engine_type_selects_the_engines(make_app, engine_type, names):
    """``engine_type`` limits the checks to the replica or to the primary."""
    _, holder = make_app(
        lambda checks, factory: checks.add_db_session_check(factory, engine_type=engine_type, level=2)
    )
    assert holder["checks"].names == names


def test_at_least_one_model_fails_on_an_empty_table(make_app, things):
    """An empty table gives a failure ``Thing record not found``; a row makes it pass."""
    app, _ = make_app(lambda checks, factory: checks.add_db_session_check(factory, at_least_one_model=Thing))
    report = app.get("/c2c/health_check", status=500).json
    assert report["failures"]["db_engine_sqlalchemy"]["message"] == "Thing record not found"
    with psycopg.connect(things.url_rw, autocommit=True) as conn:
        conn.execute("INSERT INTO thing VALUES (1)")
    assert app.get("/c2c/health_check").json["failures"] == {}


def test_query_cb_result_is_reported(make_app):
    """The value returned by ``query_cb`` is the check's result, per engine."""

    def query(session):
        return session.execute(sqlalchemy.text("SELECT current_user")).scalar()

    app, _ = make_app(lambda checks, factory: checks.add_db_session_check(factory, query_cb=query))
    successes = app.get("/c2c/health_check", headers=_AUTH).json["successes"]
    assert successes["db_engine_sqlalchemy"]["result"] == "app_rw"
    assert successes["db_engine_sqlalchemy_slave"]["result"] == "app_ro"


def test_ten_thousand_probes_leak_no_connection(make_app):
    """After 10 000 passing and failing probes no pooled connection is left checked out."""
    calls = {"n": 0}

    def query(session):
        session.execute(sqlalchemy.text("SELECT 1"))
        calls["n"] += 1
        if calls["n"] % 2:
            raise RuntimeError("odd probe")

    app, holder = make_app(lambda checks, factory: checks.add_db_session_check(factory, query_cb=query))
    checks = holder["checks"]._checks
    for _ in range(5000):
        for check in checks:
            with contextlib.suppress(RuntimeError):
                check.run(None)
    for _ in range(20):
        app.get("/c2c/health_check", expect_errors=True)
    factory = holder["factory"]
    assert calls["n"] == 10000 + 40
    assert factory.rw_engine.pool.checkedout() == 0
    assert factory.ro_engine.pool.checkedout() == 0


def test_database_down_then_back_without_restarting_the_app(make_app, postgresql):
    """Server stopped: 500 naming both engines within the timeout; started again: 200 at the next probe."""
    app, _ = make_app(lambda checks, factory: checks.add_db_session_check(factory))
    assert app.get("/c2c/health_check").json["failures"] == {}
    postgresql.stop()
    start = time.monotonic()
    report = app.get("/c2c/health_check", status=500).json
    assert time.monotonic() - start < 3 + 1
    assert set(report["failures"]) == {"db_engine_sqlalchemy", "db_engine_sqlalchemy_slave"}
    postgresql.start()
    assert app.get("/c2c/health_check").json["failures"] == {}


def test_alembic_check_compares_the_database_with_the_heads(make_app, postgresql):
    """Before the migrations the check fails; at the head it passes with the revision as result."""
    from alembic import command
    from alembic.config import Config

    app, holder = make_app(lambda checks, factory: checks.add_alembic_check(factory, _ALEMBIC_INI))
    assert holder["checks"].names == [_ALEMBIC_NAME]
    with psycopg.connect(postgresql.url_rw, autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
    assert app.get("/c2c/health_check?max_level=2", status=500).json["failures"][_ALEMBIC_NAME][
        "message"
    ] == ("Wrong database version on sqlalchemy: none instead of b2c3d4e5f6a7")
    config = Config(_ALEMBIC_INI)
    config.set_main_option("sqlalchemy.url", postgresql.url_rw)
    command.upgrade(config, "a1b2c3d4e5f6")
    failures = app.get("/c2c/health_check?max_level=2", status=500).json["failures"]
    assert "a1b2c3d4e5f6 instead of b2c3d4e5f6a7" in failures[_ALEMBIC_NAME]["message"]
    command.upgrade(config, "head")
    report = app.get("/c2c/health_check?max_level=2", headers=_AUTH).json
    assert report["successes"][_ALEMBIC_NAME] == {
        "timing": report["successes"][_ALEMBIC_NAME]["timing"],
        "level": 2,
        "result": "b2c3d4e5f6a7",
    }
    assert app.get("/c2c/health_check").json["successes"] == {}


def test_database_failure_names_no_server_for_anonymous_callers(make_app, postgresql):
    """A driver error reads ``database error: <class>`` without the secret; the secret shows the driver's."""
    url = postgresql.url_rw.rsplit("/", 1)[0] + "/no_such_database_x"
    engine = db.get_engine({"sqlalchemy.url": url})
    port = str(postgresql.port)
    try:
        app, _ = make_app(lambda checks, factory: checks.add_db_session_check(db.get_session_factory(engine)))
        anonymous = app.get("/c2c/health_check", status=500)
        failure = anonymous.json["failures"]["db_engine_sqlalchemy"]
        assert set(failure) == {"message", "level", "timing"}
        assert failure["message"] == "database error: OperationalError"
        for internal in ("no_such_database_x", "127.0.0.1", "app_rw"):
            assert internal not in anonymous.text
        assert port not in failure["message"]  # (the timing may hold the same digits)
        authorised = app.get("/c2c/health_check", headers=_AUTH, status=500).json
        assert "no_such_database_x" in authorised["failures"]["db_engine_sqlalchemy"]["message"]
    finally:
        engine.dispose()


def test_alembic_check_name_follows_the_ini_path():
    """``/app/alembic.ini`` gives the check name ``alembic_app_alembic.ini_alembic``."""
    from c2cwsgiutils import _health_check_db

    assert (
        _health_check_db.alembic_check_name("/app/alembic.ini", "alembic")
        == "alembic_app_alembic.ini_alembic"
    )


def test_draining_fails_every_level_above_zero(make_app, draining):
    """After ``drain()`` the report fails at level 1 and above while level 0 still answers 200."""
    app, _ = make_app(lambda checks, factory: checks.add_db_session_check(factory))
    health_check.HealthCheck.start_draining()
    assert health_check.is_draining()
    report = app.get("/c2c/health_check", status=500).json
    assert report["failures"]["draining"]["message"] == "the process is shutting down"
    app.get("/c2c/health_check?max_level=5", status=500)
    assert app.get("/c2c/health_check?max_level=0").json == {"successes": {}, "failures": {}}


def test_sigterm_drains_then_reaches_the_previous_handler(draining):
    """With ``drain_on_signal`` a SIGTERM drains at once and reaches the previous handler after the delay."""
    received = threading.Event()
    original = signal.signal(signal.SIGUSR1, lambda *_: received.set())
    try:
        health_check.drain_on_signal(0.2, signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert health_check.is_draining()
        assert not received.is_set()
        assert received.wait(5)
    finally:
        signal.signal(signal.SIGUSR1, original)


def test_drain_seconds_setting_installs_the_sigterm_handler(make_app):
    """``c2c.health_check.drain_seconds`` replaces the SIGTERM handler; without it nothing changes."""
    original = signal.getsignal(signal.SIGTERM)
    try:
        make_app(lambda checks, factory: None)
        assert signal.getsignal(signal.SIGTERM) is original
        make_app(lambda checks, factory: None, settings={"c2c.health_check.drain_seconds": "10"})
        assert signal.getsignal(signal.SIGTERM) is not original
    finally:
        signal.signal(signal.SIGTERM, original)
