from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import psycopg
import pytest
import sqlalchemy

from c2cwsgiutils import testing
from c2cwsgiutils.sqlalchemylogger import ContainsExpression, DoesNotContainExpression
from c2cwsgiutils.sqlalchemylogger.handlers import SQLAlchemyHandler

LOGGER = "c2cwsgiutils_test.sqlalchemylogger"


def _rows(url: str, table: str = "logs", schema: str | None = None) -> list[dict[str, Any]]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            log_table = sqlalchemy.Table(
                table, sqlalchemy.MetaData(), autoload_with=connection, schema=schema
            )
            if not log_table.columns:  # SQLite: read while the handler's thread creates it
                raise sqlalchemy.exc.NoSuchTableError(table)
            result = connection.execute(sqlalchemy.select(log_table).order_by(log_table.c.id))
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'logs.sqlite'}"


@pytest.fixture
def make_handler():
    """Build handlers attached to the test logger; whatever the test did not close is closed at the end."""
    handlers: list[SQLAlchemyHandler] = []
    logger = logging.getLogger(LOGGER)

    def build(url: str, *args: str, **kwargs: Any) -> SQLAlchemyHandler:
        handler = SQLAlchemyHandler({"url": url, **kwargs}, *args)
        handlers.append(handler)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        return handler

    yield build
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()


def test_records_are_written(sqlite_url, make_handler):
    """Each record becomes a row with its logger, level, formatted message and timestamp."""
    handler = make_handler(sqlite_url)
    log = logging.getLogger(LOGGER)
    before = time.time()
    log.info("hello %s", "world")
    log.warning("careful")
    handler.close()

    rows = _rows(sqlite_url)
    assert [(r["logger"], r["level"], r["msg"], r["trace"]) for r in rows] == [
        (LOGGER, "INFO", "hello world", None),
        (LOGGER, "WARNING", "careful", None),
    ]
    created = rows[0]["created_at"]
    if created.tzinfo is None:  # SQLite drops the time zone: the stored value is UTC
        created = created.replace(tzinfo=dt.UTC)
    assert before <= created.timestamp() <= time.time()


def test_trace_comes_from_the_record(sqlite_url, make_handler):
    """The trace is the one of the logged exception, never the exception being handled when logging."""
    handler = make_handler(sqlite_url)
    log = logging.getLogger(LOGGER)
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        log.exception("division failed")
        saved = sys.exc_info()
    try:
        {}["other"]
    except KeyError:
        log.info("no exc_info while handling another exception")
        log.error("the saved one", exc_info=saved)  # noqa: TRY400  # not the exception being handled
    log.info("with a stack", stack_info=True)
    handler.close()

    rows = {row["msg"]: row["trace"] for row in _rows(sqlite_url)}
    assert "ZeroDivisionError: division by zero" in rows["division failed"]
    assert rows["no exc_info while handling another exception"] is None
    assert "ZeroDivisionError" in rows["the saved one"]
    assert "KeyError" not in rows["the saved one"]
    assert rows["with a stack"].startswith("Stack (most recent call last):")


def test_filters(sqlite_url, make_handler):
    """``does_not_contain_expression`` drops matching messages, ``contains_expression`` keeps only them."""
    handler = make_handler(sqlite_url, "curl|health", "^GET ")
    log = logging.getLogger(LOGGER)
    log.info("GET %s", "/api/items")
    log.info("GET /health_check")
    log.info("GET %s by %s", "/api/items", "curl/8.0")
    log.info("POST /api/items")
    handler.close()
    assert [row["msg"] for row in _rows(sqlite_url)] == ["GET /api/items"]


def test_filter_classes():
    """The filter classes match the formatted message with ``re.search``."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "user %s", ("alice",), None)
    assert ContainsExpression("ali").filter(record)
    assert not ContainsExpression("^ali").filter(record)
    assert not DoesNotContainExpression("ali").filter(record)
    assert DoesNotContainExpression("bob").filter(record)
    broken = logging.LogRecord("x", logging.INFO, __file__, 1, "user %s %s", ("alice",), None)
    assert ContainsExpression("user %s").filter(broken)


def test_batch_is_written_within_a_second(sqlite_url, make_handler):
    """A record is in the database about one second after it was logged, without any flush."""
    make_handler(sqlite_url)
    logging.getLogger(LOGGER).info("soon")
    start = time.monotonic()
    while time.monotonic() - start < 5:
        try:
            if _rows(sqlite_url):
                break
        except sqlalchemy.exc.NoSuchTableError:
            pass
        time.sleep(0.05)
    elapsed = time.monotonic() - start
    assert [row["msg"] for row in _rows(sqlite_url)] == ["soon"]
    assert 0.5 < elapsed < 3


def test_flush_writes_everything(sqlite_url, make_handler):
    """``flush()`` returns once every record logged before it is in the database."""
    handler = make_handler(sqlite_url)
    log = logging.getLogger(LOGGER)
    for number in range(250):
        log.info("record %d", number)
    handler.flush()
    assert len(_rows(sqlite_url)) == 250
    log.info("after the flush")
    handler.flush()
    assert _rows(sqlite_url)[-1]["msg"] == "after the flush"


def test_database_unreachable_then_back(tmp_path, make_handler):
    """Records are kept while the database cannot be opened, and written once it can."""
    directory = tmp_path / "not_yet"
    url = f"sqlite:///{directory / 'logs.sqlite'}"
    handler = make_handler(url)
    with testing.capture_logs("c2cwsgiutils.sqlalchemylogger") as records:
        logging.getLogger(LOGGER).info("while down")
        handler.flush()
        directory.mkdir()
        logging.getLogger(LOGGER).info("when back")
        handler.flush()
    assert [row["msg"] for row in _rows(url)] == ["while down", "when back"]
    messages = [record.getMessage() for record in records]
    assert any(message.startswith("Cannot write 1 log records to sqlite:///") for message in messages)
    assert any(message.startswith("Writing the logs to sqlite:///") for message in messages)


def test_own_logs_are_not_written(sqlite_url):
    """With the handler on the root logger, SQLAlchemy's logs of the writes do not loop into the table."""
    root = logging.getLogger()
    handler = SQLAlchemyHandler({"url": sqlite_url})
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        for number in range(3):
            logging.getLogger(LOGGER).info("application %d", number)
        handler.flush()
    finally:
        root.removeHandler(handler)
        handler.close()
    assert [row["msg"] for row in _rows(sqlite_url)] == ["application 0", "application 1", "application 2"]


def test_closed_handler_drops(sqlite_url, make_handler):
    """A record logged after ``close()`` is counted as dropped, and closing twice is harmless."""
    handler = make_handler(sqlite_url)
    logging.getLogger(LOGGER).info("kept")
    handler.close()
    logging.getLogger(LOGGER).info("dropped")
    handler.close()
    assert handler.dropped == 1
    assert [row["msg"] for row in _rows(sqlite_url)] == ["kept"]


def test_bad_tableargs():
    """``tableargs`` must be a dictionary or a tuple."""
    with pytest.raises(TypeError, match="tableargs must be a dictionary or a tuple"):
        SQLAlchemyHandler({"url": "sqlite://", "tableargs": "schema"})


def test_tableargs_tuple(sqlite_url, make_handler):
    """A tuple of ``tableargs`` adds constraints and ends with the table keyword arguments."""
    handler = make_handler(
        sqlite_url,
        tablename="app_logs",
        tableargs=(sqlalchemy.Index("app_logs_level", "level"), {"comment": "logs"}),
    )
    logging.getLogger(LOGGER).info("indexed")
    handler.close()
    engine = sqlalchemy.create_engine(sqlite_url)
    try:
        indexes = sqlalchemy.inspect(engine).get_indexes("app_logs")
    finally:
        engine.dispose()
    assert [index["name"] for index in indexes] == ["app_logs_level"]
    assert [row["msg"] for row in _rows(sqlite_url, "app_logs")] == ["indexed"]


_SCRIPT = """
    import logging.config, sys
    logging.config.fileConfig(sys.argv[1])
    log = logging.getLogger("app")
    for number in range(1000):
        log.info("record %d", number)
    # No close, no flush: logging.shutdown at exit must write everything.
"""

_INI = """
    [loggers]
    keys = root

    [handlers]
    keys = sql

    [formatters]
    keys =

    [logger_root]
    level = INFO
    handlers = sql

    [handler_sql]
    class = c2cwsgiutils.sqlalchemylogger.handlers.SQLAlchemyHandler
    args = ({{"url": "{url}", "tablename": "{table}"{tableargs}}}, "ignored")
"""


def _run_script(tmp_path, url: str, table: str = "logs", tableargs: str = "") -> None:
    (tmp_path / "log.ini").write_text(
        textwrap.dedent(_INI.format(url=url, table=table, tableargs=tableargs)), encoding="utf-8"
    )
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(_SCRIPT), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "log.ini")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_nothing_lost_at_exit(tmp_path, sqlite_url):
    """A process that logs 1000 records and exits has written all of them (ini configuration)."""
    _run_script(tmp_path, sqlite_url)
    assert [row["msg"] for row in _rows(sqlite_url)] == [f"record {number}" for number in range(1000)]


def test_postgresql_batches_and_close(postgresql, make_handler):
    """1000 records then ``close()`` give 1000 rows in a table and schema created on the way."""
    url = postgresql.url_rw
    handler = make_handler(url, tablename="app_logs", tableargs={"schema": "logging"})
    log = logging.getLogger(LOGGER)
    try:
        [].pop()
    except IndexError:
        log.exception("broken \x00 record")
    for number in range(999):
        log.info("record %d", number)
    handler.close()
    rows = _rows(url, "app_logs", "logging")
    assert len(rows) == 1000
    assert rows[0]["msg"] == "broken \\x00 record"
    assert "IndexError: pop from empty list" in rows[0]["trace"]
    assert [row["msg"] for row in rows[1:]] == [f"record {number}" for number in range(999)]
    assert rows[1]["created_at"].tzinfo is not None
    assert handler.dropped == 0


def test_postgresql_table_dropped_while_running(postgresql, make_handler):
    """When the table disappears while the handler runs, it is created again and no record is lost."""
    handler = make_handler(postgresql.url_rw)
    log = logging.getLogger(LOGGER)
    log.info("first")
    handler.flush()
    with psycopg.connect(_libpq(postgresql.url_rw), autocommit=True) as conn:
        conn.execute("DROP TABLE logs")
    log.info("second")
    handler.close()
    assert [row["msg"] for row in _rows(postgresql.url_rw)] == ["second"]


def test_postgresql_missing_database(postgresql, make_handler):
    """A database that does not exist is reported clearly (SQLAlchemy-Utils is needed to create it)."""
    url = postgresql.url_rw.rsplit("/", 1)[0] + "/no_such_database"
    handler = make_handler(url)
    with testing.capture_logs("c2cwsgiutils.sqlalchemylogger") as records:
        logging.getLogger(LOGGER).info("lost")
        handler.flush()
    messages = [record.getMessage() for record in records]
    assert any(
        "if the database does not exist, create it, or install SQLAlchemy-Utils" in message
        for message in messages
    )
    assert any('database "no_such_database" does not exist' in message for message in messages)


def test_postgresql_nothing_lost_at_exit(tmp_path, postgresql):
    """A process logging to PostgreSQL through an ini file writes all its records before it exits."""
    _run_script(tmp_path, postgresql.url_rw, "exit_logs", ', "tableargs": {"schema": "exit"}')
    assert len(_rows(postgresql.url_rw, "exit_logs", "exit")) == 1000


def _libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def test_record_without_exc_info(sqlite_url, make_handler):
    """A record that carries only a formatted ``exc_text`` (e.g. received from a socket) keeps it as trace."""
    handler = make_handler(sqlite_url)
    handler.flush()  # nothing logged yet: returns at once
    handler.handle(
        logging.makeLogRecord({"name": "remote", "msg": "remote error", "exc_text": "Traceback: boom"})
    )
    handler.close()
    assert [(row["logger"], row["msg"], row["trace"]) for row in _rows(sqlite_url)] == [
        ("remote", "remote error", "Traceback: boom")
    ]


def test_bad_record_is_reported_by_logging(sqlite_url, make_handler, capsys):
    """A record whose arguments do not match its format goes to the standard logging error report."""
    handler = make_handler(sqlite_url)
    logging.getLogger(LOGGER).info("number %d", "not a number")
    logging.getLogger(LOGGER).info("fine")
    handler.close()
    assert "--- Logging error ---" in capsys.readouterr().err
    assert [row["msg"] for row in _rows(sqlite_url)] == ["fine"]


def test_queue_is_bounded_while_down(tmp_path, make_handler):
    """While the database is down, at most ``MAX_QUEUE`` records are kept; the others are counted."""

    class SmallHandler(SQLAlchemyHandler):
        MAX_QUEUE = 10
        MAX_TIMEOUT = 0.1

    directory = tmp_path / "not_yet"
    url = f"sqlite:///{directory / 'logs.sqlite'}"
    handler = SmallHandler({"url": url})
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for number in range(30):
            logger.info("record %d", number)
        time.sleep(0.5)  # a few timed tries while the database cannot be opened
        handler.flush()
        directory.mkdir()
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert len(_rows(url)) == 10
    assert handler.dropped == 20


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Python >= 3.12 warns about fork with threads
def test_fork(sqlite_url, make_handler):
    """A forked child writes its own records with its own thread; the parent goes on writing."""
    handler = make_handler(sqlite_url)
    log = logging.getLogger(LOGGER)
    log.info("parent before")
    handler.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  # the child ends with os._exit
        code = 1
        try:
            log.info("child")
            handler.close()
            code = 0 if handler.dropped == 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    log.info("parent after")
    handler.close()
    assert sorted(row["msg"] for row in _rows(sqlite_url)) == ["child", "parent after", "parent before"]


def test_postgresql_refused_rows_are_dropped(postgresql, make_handler):
    """Rows the database refuses are dropped and counted; the next records are written."""
    with psycopg.connect(_libpq(postgresql.url_rw), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE logs (id serial PRIMARY KEY, logger text, level text, trace text, "
            "msg varchar(10), created_at timestamptz)"
        )
    handler = make_handler(postgresql.url_rw)
    log = logging.getLogger(LOGGER)
    with testing.capture_logs("c2cwsgiutils.sqlalchemylogger") as records:
        log.info("this message is too long")
        handler.flush()
        log.info("short")
        handler.close()
    assert [row["msg"] for row in _rows(postgresql.url_rw)] == ["short"]
    assert handler.dropped == 1
    messages = [record.getMessage() for record in records]
    assert any("value too long for type character varying(10)" in message for message in messages)
