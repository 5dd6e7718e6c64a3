"""The SQL profiler engine part: EXPLAIN ANALYZE of each distinct SELECT, logged once, bounded."""

from __future__ import annotations

import concurrent.futures
import logging

import psycopg
import pytest
import sqlalchemy

from c2cwsgiutils import sql_profiler, testing
from c2cwsgiutils.sql_profiler import _impl

_LOGGER = "c2cwsgiutils.sql_profiler._impl"


@pytest.fixture
def engine(postgresql):
    """An engine on the primary with a small table."""
    with psycopg.connect(postgresql.url_rw, autocommit=True) as conn:
        conn.execute("CREATE TABLE thing (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO thing SELECT i, 'n' || i FROM generate_series(1, 10) i")
    engine = sqlalchemy.create_engine(postgresql.url_rw, pool_size=2, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def profiler(monkeypatch):
    """A fresh profiler (small cap) in place of the process one, disabled at the end."""
    fresh = _impl.Profiler(max_statements=3)
    monkeypatch.setattr(_impl, "profiler", fresh)
    monkeypatch.setattr(sql_profiler, "profiler", fresh)
    yield fresh
    fresh.disable()


def _plans(records):
    return [r.getMessage() for r in records if r.getMessage().startswith("statement:")]


def test_each_distinct_select_is_explained_once(engine, profiler):
    """A SELECT run twice logs its plan once, with the shortened statement and its parameters."""
    sql_profiler.enable()
    assert sql_profiler.is_enabled()
    query = sqlalchemy.text("SELECT id, name FROM thing WHERE id = :id ORDER BY name")
    with testing.capture_logs(_LOGGER, logging.INFO) as records, engine.connect() as conn:
        assert conn.execute(query, {"id": 3}).all() == [(3, "n3")]
        assert conn.execute(query, {"id": 4}).all() == [(4, "n4")]
        conn.execute(sqlalchemy.text("UPDATE thing SET name = 'x' WHERE id = 1"))
    plans = _plans(records)
    assert len(plans) == 1
    assert "SELECT ...\n  FROM thing\n  WHERE id = " in plans[0]
    assert "\n  ORDER BY name" in plans[0]
    assert "'id': 3" in plans[0]
    assert "actual time=" in plans[0]


def test_disabled_profiler_logs_nothing(engine, profiler):
    """After disable() the listener stays installed but no plan is logged."""
    sql_profiler.enable()
    sql_profiler.disable()
    assert not sql_profiler.is_enabled()
    with testing.capture_logs(_LOGGER, logging.INFO) as records, engine.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT count(*) FROM thing")).scalar()
    assert _plans(records) == []


def test_the_set_of_seen_statements_is_bounded(engine, profiler):
    """Past the cap, new statements are not analysed and a single warning says so."""
    sql_profiler.enable()
    with testing.capture_logs(_LOGGER, logging.INFO) as records, engine.connect() as conn:
        for limit in range(1, 8):
            conn.execute(sqlalchemy.text(f"SELECT id FROM thing LIMIT {limit}")).all()
    assert len(_plans(records)) == 3
    assert len(profiler._seen) == 3
    assert sum("ignoring new ones" in r.getMessage() for r in records) == 1


def test_explain_side_effects_are_rolled_back_and_the_transaction_continues(engine, profiler, postgresql):
    """A SELECT calling a function that writes runs it once, and its transaction goes on."""
    with psycopg.connect(postgresql.url_rw, autocommit=True) as conn:
        conn.execute("CREATE TABLE calls (n int)")
        conn.execute(
            "CREATE FUNCTION record_call() RETURNS int LANGUAGE sql AS "
            "$$ INSERT INTO calls VALUES (1) RETURNING 1 $$"
        )
    sql_profiler.enable()
    with testing.capture_logs(_LOGGER, logging.INFO) as records, engine.begin() as conn:
        assert conn.execute(sqlalchemy.text("SELECT record_call()")).scalar() == 1
    assert len(_plans(records)) == 1
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM calls")).scalar() == 1


def _skipped(records):
    return [getattr(r, "analyze_skipped", None) for r in records if r.getMessage().startswith("statement:")]


def test_a_profiled_nextval_takes_one_value(engine, profiler):
    """A profiled SELECT nextval() advances the sequence by one: it is explained, not analysed."""
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE SEQUENCE s"))
    sql_profiler.enable()
    with testing.capture_logs(_LOGGER, logging.INFO) as records, engine.begin() as conn:
        assert conn.execute(sqlalchemy.text("SELECT nextval('s')")).scalar() == 1
    sql_profiler.disable()
    with engine.begin() as conn:
        assert conn.execute(sqlalchemy.text("SELECT nextval('s')")).scalar() == 2
    (plan,) = _plans(records)
    assert "ANALYZE skipped, plan without execution: it calls nextval()" in plan
    assert "Result" in plan
    assert "actual time=" not in plan
    assert _skipped(records) == ["it calls nextval(), which has effects a rollback does not undo"]


def test_a_volatile_function_behind_a_view_runs_once(engine, profiler):
    """PostgreSQL's catalog tells that a function called by a view is VOLATILE: not analysed."""
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE SEQUENCE profiler_hidden_sequence"))
        conn.execute(
            sqlalchemy.text(
                "CREATE FUNCTION bump() RETURNS bigint LANGUAGE plpgsql AS "
                "$$ BEGIN RETURN nextval('profiler_hidden_sequence'); END $$"
            )
        )
        conn.execute(sqlalchemy.text("CREATE VIEW counter AS SELECT bump() AS value"))
    sql_profiler.enable()
    with testing.capture_logs(_LOGGER, logging.INFO) as records, engine.begin() as conn:
        assert conn.execute(sqlalchemy.text("SELECT value FROM counter")).scalar() == 1
    sql_profiler.disable()
    with engine.begin() as conn:
        assert conn.execute(sqlalchemy.text("SELECT last_value FROM profiler_hidden_sequence")).scalar() == 1
    assert _skipped(records) == ["it calls the VOLATILE function(s) bump()"]


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("SELECT name FROM thing WHERE id = 1 FOR UPDATE", "it locks rows (FOR UPDATE/SHARE)"),
        ("SELECT pg_try_advisory_lock(7)", "it calls pg_try_advisory_lock(), which has effects"),
        ("SELECT id INTO thing_copy FROM thing", "it contains INTO, it may write"),
        ("SELECT random() < 2", "it calls the VOLATILE function(s) random()"),
    ],
)
def test_statements_not_safe_to_run_twice_are_only_explained(engine, profiler, statement, reason):
    """Row locks, known side effects, SELECT INTO and VOLATILE functions: plain EXPLAIN, and why."""
    sql_profiler.enable()
    with testing.capture_logs(_LOGGER, logging.INFO) as records, engine.begin() as conn:
        conn.execute(sqlalchemy.text(statement))
    (skipped,) = _skipped(records)
    assert skipped.startswith(reason)
    assert "actual time=" not in _plans(records)[0]


def test_a_plain_select_is_still_analysed(engine, profiler):
    """A SELECT with only STABLE/IMMUTABLE functions gets EXPLAIN ANALYZE, with timings."""
    sql_profiler.enable()
    query = sqlalchemy.text("SELECT upper(name), count(*) FROM thing WHERE id IN (1, 2) GROUP BY name")
    with testing.capture_logs(_LOGGER, logging.INFO) as records, engine.begin() as conn:
        assert len(conn.execute(query).all()) == 2
    (plan,) = _plans(records)
    assert "actual time=" in plan
    assert "skipped" not in plan
    assert _skipped(records) == [None]


def test_a_failing_explain_never_breaks_the_query(engine, profiler):
    """In autocommit mode the savepoint is impossible: the query still works and nothing is raised."""
    sql_profiler.enable()
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with testing.capture_logs(_LOGGER, logging.INFO) as records, autocommit.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT 41 + 1")).scalar() == 42
    assert any("cannot analyse" in r.getMessage() for r in records)


def test_enable_disable_races_with_running_queries(engine, profiler):
    """Toggling from one thread while others query never fails a query."""
    sql_profiler.enable()

    def query(index):
        with engine.connect() as conn:
            return conn.execute(sqlalchemy.text(f"SELECT {index % 5} + 0")).scalar()

    with (
        testing.capture_logs(_LOGGER, logging.INFO),
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        futures = [pool.submit(query, i) for i in range(100)]
        for i in range(100):
            (sql_profiler.enable if i % 2 else sql_profiler.disable)()
        assert [f.result() for f in futures] == [i % 5 for i in range(100)]


def test_format_statement_collapses_the_select_list():
    """The select list becomes ``...`` and each clause starts an indented line."""
    text = _impl.format_statement("SELECT a, b,\n c FROM t JOIN u ON t.id = u.id WHERE a = 1 GROUP BY a")
    assert text == "  SELECT ...\n  FROM t\n  JOIN u\n  ON t.id = u.id\n  WHERE a = 1\n  GROUP BY a"
