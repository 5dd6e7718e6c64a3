"""The primary/replica sessions of ``c2cwsgiutils.db`` against a real PostgreSQL server."""

from __future__ import annotations

import concurrent.futures
import os
import re

import psycopg
import pytest
import requests
import sqlalchemy
import sqlalchemy.exc
import transaction
import zope.sqlalchemy

from c2cwsgiutils import _db_session, db, testing


@pytest.fixture
def items(postgresql):
    """The table ``item`` created by the read/write role (readable by the read-only role)."""
    with psycopg.connect(postgresql.url_rw, autocommit=True) as conn:
        conn.execute("CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL)")
    return postgresql


@pytest.fixture
def engines():
    """Engines created by the test, disposed at the end."""
    created = []
    yield created
    for engine in created:
        engine.dispose()


def _who(request):
    return {"user": request.dbsession.execute(sqlalchemy.text("SELECT current_user")).scalar()}


def _write(request):
    session = request.dbsession
    session.execute(sqlalchemy.text("INSERT INTO item (name) VALUES (:name)"), {"name": request.method})
    zope.sqlalchemy.mark_changed(session)  # text SQL: tell the transaction there is something to commit
    return {"user": session.execute(sqlalchemy.text("SELECT current_user")).scalar()}


def _read_write_read(request):
    session = request.dbsession
    users = [session.execute(sqlalchemy.text("SELECT current_user")).scalar()]
    session.execute(sqlalchemy.text("INSERT INTO item (name) VALUES ('ryw')"))
    zope.sqlalchemy.mark_changed(session)
    users.append(session.execute(sqlalchemy.text("SELECT current_user")).scalar())
    count = session.execute(sqlalchemy.text("SELECT count(*) FROM item WHERE name = 'ryw'")).scalar()
    return {"users": users, "count": count}


class _Base(sqlalchemy.orm.DeclarativeBase):
    pass


class _Item(_Base):
    __tablename__ = "item"
    id: sqlalchemy.orm.Mapped[int] = sqlalchemy.orm.mapped_column(primary_key=True)
    name: sqlalchemy.orm.Mapped[str]


def _orm_write(request):
    """An ORM write: the flush alone tells the transaction to commit (no mark_changed)."""
    request.dbsession.add(_Item(name=request.params["name"]))
    if request.params.get("fail"):
        request.dbsession.flush()
        raise RuntimeError("after the write")
    return {}


def _application_name(request):
    sql = "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    return {"name": request.dbsession.execute(sqlalchemy.text(sql)).scalar()}


def _make_app(postgresql, engines, settings=None, **init_kwargs):
    settings = {
        "sqlalchemy.url": postgresql.url_rw,
        "sqlalchemy_slave.url": postgresql.url_ro,
        **(settings or {}),
    }

    def configure(config):
        factory = db.init(config, "sqlalchemy", "sqlalchemy_slave", **init_kwargs)
        engines.extend({factory.rw_engine, factory.ro_engine})
        config.registry["test.factory"] = factory
        for name, view in {
            "who": _who,
            "write": _write,
            "ryw": _read_write_read,
            "app_name": _application_name,
            "orm_write": _orm_write,
        }.items():
            config.add_route(name, "/" + name)
            config.add_view(view, route_name=name, renderer="fast_json")

    return testing.make_app(settings, configure=configure)


def _postgres_url(url):
    """The libpq form of a SQLAlchemy URL (without ``+driver``)."""
    return "postgresql://" + url.split("://", 1)[1]


def _count(url, name=None):
    with psycopg.connect(url) as conn:
        if name is None:
            return conn.execute("SELECT count(*) FROM item").fetchone()[0]
        return conn.execute("SELECT count(*) FROM item WHERE name = %s", (name,)).fetchone()[0]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/api/items", False),
        ("HEAD", "/api/items", False),
        ("OPTIONS", "/api/items", False),
        ("POST", "/api/items", True),
        ("PUT", "/api/items/1", True),
        ("DELETE", "/api/items/1", True),
        ("GET", "/api/refresh", True),
        ("POST", "/api/search", False),
    ],
)
def test_engine_choice_follows_method_and_patterns(method, path, expected):
    """Reads go to the replica, writes to the primary, and the regexes on "METHOD /path" override."""
    master = _db_session.compile_patterns([r"GET /api/refresh"])
    slave = _db_session.compile_patterns([re.compile(r"POST /api/search")])
    assert _db_session.wants_readwrite(method, path, master, slave, force_readonly=False) is expected


def test_engine_choice_in_maintenance_mode_is_the_replica():
    """In maintenance mode even a write that a regex forces to the primary goes to the replica."""
    master = _db_session.compile_patterns([r"POST /"])
    assert not _db_session.wants_readwrite("POST", "/x", master, (), force_readonly=True)


def test_requests_use_the_replica_for_reads_and_the_primary_for_writes(items, engines):
    """A GET request runs as the read-only role, a POST as the read/write role, whose write is committed."""
    import webtest

    client = webtest.TestApp(_make_app(items, engines))
    assert client.get("/who").json == {"user": "app_ro"}
    assert client.post("/write").json == {"user": "app_rw"}
    assert _count(items.url_rw, "POST") == 1


def test_a_write_routed_to_the_replica_fails_loudly(items, engines):
    """A GET request that writes fails (the replica is read-only) and nothing is written."""
    import webtest

    client = webtest.TestApp(_make_app(items, engines))
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
        client.get("/write")
    assert _count(items.url_rw) == 0


def test_force_master_and_force_slave_patterns_route_requests(items, engines):
    """``force_master`` sends a GET to the primary and ``force_slave`` a POST to the replica."""
    import webtest

    app = _make_app(items, engines, force_master=[r"GET /write"], force_slave=[r"POST /who"])
    client = webtest.TestApp(app)
    assert client.get("/write").json == {"user": "app_rw"}
    assert client.post("/who").json == {"user": "app_ro"}


def test_maintenance_mode_sends_every_request_to_the_replica(items, engines):
    """With ``set_force_readonly(True)`` a POST is served by the replica, and back after the switch."""
    import webtest

    client = webtest.TestApp(_make_app(items, engines))
    db.set_force_readonly(True)
    try:
        assert db.force_readonly is True
        assert client.post("/who").json == {"user": "app_ro"}
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
            client.post("/write")
    finally:
        db.set_force_readonly(False)
    assert client.post("/write").json == {"user": "app_rw"}


def test_concurrent_requests_on_a_threaded_server_never_swap_engines(items, engines):
    """Under 200 concurrent GET and POST on waitress, reads stay on the replica and writes on the primary."""
    webtest_http = pytest.importorskip("webtest.http")
    app = _make_app(items, engines, settings={"sqlalchemy.pool_size": "10"})
    server = webtest_http.StopableWSGIServer.create(app, host="127.0.0.1", threads=8)
    try:  # the socket listens once create() returns (no wait(): it leaks its probe connection)
        base = server.application_url.rstrip("/")

        def call(index):
            method = "POST" if index % 2 else "GET"
            response = requests.request(
                method,
                f"{base}/{'write' if method == 'POST' else 'who'}",
                headers={"Connection": "close"},
                timeout=30,
            )
            response.raise_for_status()
            return method, response.json()["user"]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(call, range(200)))
    finally:
        server.shutdown()
    assert {user for method, user in results if method == "GET"} == {"app_ro"}
    assert {user for method, user in results if method == "POST"} == {"app_rw"}
    assert _count(items.url_rw, "POST") == 100


def test_read_your_writes_keeps_the_request_on_the_primary_after_a_write(items, engines):
    """With the option, a GET reads on the replica, then writes and reads its own row on the primary."""
    import webtest

    client = webtest.TestApp(_make_app(items, engines, settings={"c2c.db.read_your_writes": "true"}))
    assert client.get("/ryw").json == {"users": ["app_ro", "app_rw"], "count": 1}
    assert _count(items.url_rw, "ryw") == 1
    assert client.get("/who").json == {"user": "app_ro"}


@pytest.mark.parametrize("how", ["orm", "text"])
def test_read_your_writes_sends_locking_reads_to_the_primary(items, engines, how):
    """A ``SELECT ... FOR UPDATE`` (ORM or text) of a replica session goes to the primary, which can lock."""
    import webtest

    def lock(request):
        session = request.dbsession
        users = [session.execute(sqlalchemy.text("SELECT current_user")).scalar()]
        if how == "orm":
            session.execute(sqlalchemy.select(_Item).with_for_update(nowait=True)).all()
        else:
            session.execute(sqlalchemy.text("SELECT id FROM item FOR SHARE")).all()
        users.append(session.execute(sqlalchemy.text("SELECT current_user")).scalar())
        return {"users": users}

    def configure(config):
        factory = db.init(config, "sqlalchemy", "sqlalchemy_slave")
        engines.extend({factory.rw_engine, factory.ro_engine})
        config.add_route("lock", "/lock")
        config.add_view(lock, route_name="lock", renderer="fast_json")

    settings = {
        "sqlalchemy.url": items.url_rw,
        "sqlalchemy_slave.url": items.url_ro,
        "c2c.db.read_your_writes": "true",
    }
    client = webtest.TestApp(testing.make_app(settings, configure=configure))
    assert client.get("/lock").json == {"users": ["app_ro", "app_rw"]}


def test_read_your_writes_flushes_on_the_primary(items, engines):
    """An ORM write of a replica session is flushed, and read back, on the primary; then committed."""
    import webtest

    def add(request):
        session = request.dbsession
        users = [session.execute(sqlalchemy.text("SELECT current_user")).scalar()]
        session.add(_Item(name="flushed"))
        found = session.execute(sqlalchemy.select(_Item.name).where(_Item.name == "flushed")).scalar()
        users.append(session.execute(sqlalchemy.text("SELECT current_user")).scalar())
        return {"users": users, "found": found}

    def configure(config):
        factory = db.init(config, "sqlalchemy", "sqlalchemy_slave")
        engines.extend({factory.rw_engine, factory.ro_engine})
        config.add_route("add", "/add")
        config.add_view(add, route_name="add", renderer="fast_json")

    settings = {
        "sqlalchemy.url": items.url_rw,
        "sqlalchemy_slave.url": items.url_ro,
        "c2c.db.read_your_writes": "true",
    }
    client = webtest.TestApp(testing.make_app(settings, configure=configure))
    assert client.get("/add").json == {"users": ["app_ro", "app_rw"], "found": "flushed"}
    assert _count(items.url_rw, "flushed") == 1


def test_read_your_writes_is_off_by_default(items, engines):
    """Without the option the write of a GET request goes to the replica and fails."""
    import webtest

    client = webtest.TestApp(_make_app(items, engines))
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
        client.get("/ryw")


def test_sql_request_id_reaches_postgresql_as_application_name(items, engines):
    """With ``c2c.sql_request_id`` the request id is the ``application_name`` seen by ``pg_stat_activity``."""
    import webtest

    client = webtest.TestApp(_make_app(items, engines, settings={"c2c.sql_request_id": "true"}))
    response = client.get("/app_name", headers={"X-Request-ID": "req-42"})
    assert response.json == {"name": "req-42"}
    assert client.post("/app_name", headers={"X-Request-ID": "req-43"}).json == {"name": "req-43"}


def test_sql_request_id_keeps_quotes_and_the_isolation_level(items, engines):
    """Quotes and backslashes of the id reach PostgreSQL as is; an engine's isolation level still applies."""
    import webtest

    def isolation(request):
        sql = "SELECT application_name, current_setting('transaction_isolation') FROM pg_stat_activity "
        row = request.dbsession.execute(sqlalchemy.text(sql + "WHERE pid = pg_backend_pid()")).one()
        return {"name": row[0], "isolation": row[1]}

    def configure(config):
        factory = db.init(config, "sqlalchemy")
        engines.append(factory.rw_engine)
        config.add_route("isolation", "/isolation")
        config.add_view(isolation, route_name="isolation", renderer="fast_json")

    settings = {"sqlalchemy.url": items.url_rw, "c2c.sql_request_id": "true"}
    client = webtest.TestApp(testing.make_app(settings, configure=configure))
    tricky = "it's a \\ 'quoted' id"
    assert client.get("/isolation", headers={"X-Request-ID": tricky}).json == {
        "name": tricky,
        "isolation": "read committed",
    }
    settings["sqlalchemy.isolation_level"] = "REPEATABLE READ"
    client = webtest.TestApp(testing.make_app(settings, configure=configure))
    assert client.get("/isolation", headers={"X-Request-ID": "rr-1"}).json == {
        "name": "rr-1",
        "isolation": "repeatable read",
    }


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_sql_request_id_with_each_driver_lasts_one_transaction(items, engines, driver):
    """With psycopg 3 and psycopg2 the id is the ``application_name``; the pooled connection forgets it."""
    import webtest

    pytest.importorskip(driver)
    settings = {
        "sqlalchemy.url": f"postgresql+{driver}://" + items.url_rw.split("://", 1)[1],
        "sqlalchemy_slave.url": f"postgresql+{driver}://" + items.url_ro.split("://", 1)[1],
        "c2c.sql_request_id": "true",
    }
    app = _make_app(items, engines, settings=settings)
    client = webtest.TestApp(app)
    assert client.get("/app_name", headers={"X-Request-ID": f"{driver}-1"}).json == {"name": f"{driver}-1"}
    assert client.post("/app_name", headers={"X-Request-ID": f"{driver}-2"}).json == {"name": f"{driver}-2"}
    factory = app.registry["test.factory"]
    assert factory.ro_engine.dialect.driver == driver
    with factory.ro_engine.connect() as connection:  # the pooled connection of the GET request
        name = connection.exec_driver_sql(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
        assert name.scalar() != f"{driver}-1"


@pytest.mark.parametrize("value", [None, "false"])
def test_sql_request_id_off_installs_nothing(items, engines, value):
    """When off (also with ``false``) no listener is installed and ``application_name`` is untouched."""
    import webtest

    settings = {} if value is None else {"c2c.sql_request_id": value}
    app = _make_app(items, engines, settings=settings)
    factory = app.registry["test.factory"]
    assert not sqlalchemy.event.contains(factory, "after_begin", db._set_application_name)
    response = webtest.TestApp(app).get("/app_name", headers={"X-Request-ID": "req-44"})
    assert response.json["name"] != "req-44"


def test_dbengine_setting_replaces_both_engines(items, engines):
    """The ``dbengine`` test hook serves reads and writes with the given engine."""
    import webtest

    engine = sqlalchemy.create_engine(items.url_rw)
    engines.append(engine)
    client = webtest.TestApp(_make_app(items, engines, settings={"dbengine": engine}))
    assert client.get("/who").json == {"user": "app_rw"}


def test_environ_dbsession_replaces_the_request_session(items, engines):
    """``request.environ["app.dbsession"]`` is used as ``request.dbsession``."""
    import webtest

    engine = sqlalchemy.create_engine(items.url_ro)
    engines.append(engine)
    client = webtest.TestApp(_make_app(items, engines))
    with sqlalchemy.orm.Session(engine) as session:
        response = client.post("/who", extra_environ={"app.dbsession": session})
    assert response.json == {"user": "app_ro"}


def test_session_factory_names_and_script_helpers(items, engines):
    """Scripts get an engine from settings and a transaction-bound session that commits."""
    engine = db.get_engine({"sqlalchemy.url": items.url_rw, "sqlalchemy.pool_size": "2"})
    engines.append(engine)
    factory = db.get_session_factory(engine)
    assert factory.engine_name(True) == "sqlalchemy"
    with transaction.manager:
        session = db.get_tm_session(factory, transaction.manager)
        session.execute(sqlalchemy.text("INSERT INTO item (name) VALUES ('script')"))
        zope.sqlalchemy.mark_changed(session)
    assert _count(items.url_rw, "script") == 1
    assert engine.pool.checkedout() == 0


def test_session_factory_call_with_readwrite(items, engines):
    """``factory(None, readwrite=False)`` opens a replica session, ``readwrite=True`` a primary one."""
    ro = sqlalchemy.create_engine(items.url_ro)
    rw = sqlalchemy.create_engine(items.url_rw)
    engines.extend([ro, rw])
    _db_session.set_engine_name(ro, "sqlalchemy_slave")
    factory = db.SessionFactory(None, None, ro, rw)
    assert factory.engine_name(False) == "sqlalchemy_slave"
    for readwrite, user in ((False, "app_ro"), (True, "app_rw")):
        with factory(None, readwrite=readwrite) as session:
            assert session.execute(sqlalchemy.text("SELECT current_user")).scalar() == user


@pytest.mark.parametrize("api", ["setup_session", "create_session"])
def test_deprecated_scoped_session_apis_route_requests(items, engines, api):
    """The deprecated APIs give a scoped session that their tween binds to the request's engine."""
    import webtest

    holder = {}

    def configure(config):
        with pytest.deprecated_call():
            if api == "setup_session":
                session, rw, ro = db.setup_session(config, "sqlalchemy", "sqlalchemy_slave")
            else:
                session = db.create_session(config, "legacy", items.url_rw, items.url_ro)
                rw, ro = session.c2c_rw_bind, session.c2c_ro_bind
        engines.extend([rw, ro])
        holder["session"] = session

        def view(request):
            return {"user": session.execute(sqlalchemy.text("SELECT current_user")).scalar()}

        config.add_route("who", "/who")
        config.add_view(view, route_name="who", renderer="fast_json")

    settings = {"sqlalchemy.url": items.url_rw, "sqlalchemy_slave.url": items.url_ro}
    client = webtest.TestApp(testing.make_app(settings, configure=configure))
    assert client.get("/who").json == {"user": "app_ro"}
    assert client.post("/who").json == {"user": "app_rw"}
    name = "sqlalchemy" if api == "setup_session" else "legacy"
    assert callable(getattr(db.tweens, name))
    if api == "create_session":
        assert holder["session"].c2c_ro_bind.c2c_name == "legacy_slave"


def test_a_forked_worker_opens_its_own_connections(postgresql, engines):
    """After a fork (gunicorn with preload), the child never reuses the parent's pooled connections."""
    engine = db.get_engine({"sqlalchemy.url": postgresql.url_rw})
    engines.append(engine)

    def backend_pid() -> int:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()

    parent_pid = backend_pid()  # the connection goes back to the pool
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  # the child process
        try:
            os.write(write, str(backend_pid()).encode())
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    child_pid = int(os.read(read, 32))
    os.close(read)
    os.close(write)
    assert child_pid != parent_pid
    assert backend_pid() == parent_pid, "the parent's pooled connection still works"


def test_the_request_session_takes_part_in_the_request_transaction(items, engines):
    """Committed at the end of a request, rolled back when the view fails; other sessions are free."""
    import webtest

    app = _make_app(items, engines)
    client = webtest.TestApp(app)
    client.post("/orm_write", {"name": "kept"})
    assert _count(items.url_rw, "kept") == 1
    with pytest.raises(RuntimeError, match="after the write"):  # pyramid_tm aborts, then re-raises
        client.post("/orm_write", {"name": "lost", "fail": "1"})
    assert _count(items.url_rw, "lost") == 0
    # A session of the same factory outside a request is not joined to any transaction manager.
    factory = app.registry["test.factory"]
    with factory(None, readwrite=True) as session:
        session.add(_Item(name="own"))
        session.commit()
    assert _count(items.url_rw, "own") == 1


def test_a_failing_sql_request_id_never_fails_the_request(items, engines, monkeypatch, caplog):
    """Setting application_name that raises is logged once per cause; the requests answer."""
    import logging

    import webtest

    from c2cwsgiutils import _safety

    monkeypatch.setattr(_safety, "reraise_internal_errors", False)

    def fail(connection, request):
        raise TypeError("an unexpected request id")

    monkeypatch.setattr(db, "_execute_set_application_name", fail)
    client = webtest.TestApp(_make_app(items, engines, settings={"c2c.sql_request_id": "true"}))
    with caplog.at_level(logging.DEBUG, logger="c2cwsgiutils"):
        for _ in range(3):
            assert client.get("/who").json == {"user": "app_ro"}
    failures = [r for r in caplog.records if "application_name" in r.getMessage()]
    assert [r.levelname for r in failures] == ["ERROR", "DEBUG", "DEBUG"]
