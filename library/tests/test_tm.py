"""The request transaction of ``db.init`` (pyramid_tm with an explicit manager, zope.sqlalchemy)."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy
import transaction
import transaction.interfaces
import webtest
import zope.sqlalchemy
from pyramid.httpexceptions import HTTPBadRequest

from c2cwsgiutils import db, testing


@pytest.fixture
def items(postgresql):
    """The table ``item`` created by the read/write role (readable by the read-only role)."""
    with psycopg.connect(_libpq(postgresql.url_rw), autocommit=True) as conn:
        conn.execute("CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL)")
    return postgresql


@pytest.fixture
def factories():
    """Session factories of the applications built by the test; their engines are disposed at the end."""
    created = []
    yield created
    for factory in created:
        factory.rw_engine.dispose()
        factory.ro_engine.dispose()


def _libpq(url):
    """The libpq form of a SQLAlchemy URL (without ``+driver``)."""
    return "postgresql://" + url.split("://", 1)[1]


def _count(url, name):
    with psycopg.connect(_libpq(url)) as conn:
        return conn.execute("SELECT count(*) FROM item WHERE name = %s", (name,)).fetchone()[0]


def _insert(request):
    """Insert a row with text SQL; ``mark=1`` tells the transaction, ``fail`` raises after the write."""
    session = request.dbsession
    session.execute(
        sqlalchemy.text("INSERT INTO item (name) VALUES (:name)"), {"name": request.params["name"]}
    )
    if request.params.get("mark"):
        zope.sqlalchemy.mark_changed(session)
    fail = request.params.get("fail")
    if fail == "400":
        raise HTTPBadRequest
    if fail == "500":
        raise RuntimeError("after the write")
    if fail == "doom":
        request.tm.doom()
    return {}


def _describe(request):
    return {
        "explicit": request.tm.explicit,
        "description": request.tm.get().description,
        "is_manager": isinstance(request.tm, transaction.TransactionManager),
        "global_manager": request.tm is transaction.manager,
    }


def _read(request):
    return {"user": request.dbsession.execute(sqlalchemy.text("SELECT current_user")).scalar()}


def _make_app(postgresql, factories):
    def configure(config):
        factory = db.init(config, "sqlalchemy", "sqlalchemy_slave")
        factories.append(factory)
        for name, view in {"insert": _insert, "describe": _describe, "read": _read}.items():
            config.add_route(name, "/" + name)
            config.add_view(view, route_name=name, renderer="fast_json")

    settings = {"sqlalchemy.url": postgresql.url_rw, "sqlalchemy_slave.url": postgresql.url_ro}
    return webtest.TestApp(testing.make_app(settings, configure=configure))


def test_request_tm_is_a_per_request_explicit_manager_with_pyramid_tm_notes(items, factories):
    """``request.tm`` is an explicit manager of its own whose transaction carries the path as note."""
    client = _make_app(items, factories)
    assert client.get("/describe").json == {
        "explicit": True,
        "description": "/describe",
        "is_manager": True,
        "global_manager": False,
    }


def test_marked_work_is_committed_when_the_view_succeeds(items, factories):
    """Text SQL marked with ``zope.sqlalchemy.mark_changed`` is committed at the end of the request."""
    client = _make_app(items, factories)
    client.post("/insert", {"name": "kept", "mark": "1"})
    assert _count(items.url_rw, "kept") == 1


def test_unmarked_text_sql_is_rolled_back(items, factories):
    """Without ``mark_changed``, zope.sqlalchemy treats the text-only transaction as read-only."""
    client = _make_app(items, factories)
    client.post("/insert", {"name": "unmarked"})
    assert _count(items.url_rw, "unmarked") == 0


@pytest.mark.parametrize("fail", ["400", "500", "doom"])
def test_work_is_aborted_on_errors_and_doom(items, factories, fail):
    """An error answer, an exception or a doomed transaction aborts even marked work."""
    client = _make_app(items, factories)
    if fail == "500":
        with pytest.raises(RuntimeError, match="after the write"):  # no error view in this application
            client.post("/insert", {"name": fail, "mark": "1", "fail": fail})
    else:
        client.post(
            "/insert", {"name": fail, "mark": "1", "fail": fail}, status=400 if fail == "400" else 200
        )
    assert _count(items.url_rw, fail) == 0


def test_a_read_only_request_leaves_no_connection_idle_in_transaction(items, factories):
    """After GET requests that only read, their pooled connection is idle, never idle in transaction."""

    def states():
        with psycopg.connect(_libpq(items.url_ro), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT state FROM pg_stat_activity WHERE usename = current_user AND pid <> pg_backend_pid()"
            ).fetchall()
        return sorted(state for (state,) in rows)

    client = _make_app(items, factories)
    for _ in range(3):
        assert client.get("/read").json == {"user": "app_ro"}
    assert states() == ["idle"]  # the pooled connection of the replica engine
    # The measure sees a connection left in a transaction: a session outside any request.
    with factories[0](None, readwrite=False) as session:
        session.execute(sqlalchemy.text("SELECT 1"))
        assert "idle in transaction" in states()
    assert states() == ["idle"]  # closed: back in the pool, rolled back


def test_a_request_manager_has_no_transaction_after_the_request(items, factories):
    """Outside the request pyramid_tm ended, the explicit manager refuses to hand out a transaction."""
    managers = []

    def configure(config):
        factories.append(db.init(config, "sqlalchemy"))

        def keep(request):
            managers.append(request.tm)
            return {}

        config.add_route("keep", "/keep")
        config.add_view(keep, route_name="keep", renderer="fast_json")

    client = webtest.TestApp(testing.make_app({"sqlalchemy.url": items.url_rw}, configure=configure))
    client.get("/keep")
    with pytest.raises(transaction.interfaces.NoTransaction):
        managers[0].get()
