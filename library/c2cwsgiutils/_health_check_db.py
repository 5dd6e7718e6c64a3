"""Database and alembic checks of :class:`c2cwsgiutils.health_check.HealthCheck` (private).

Every check opens its own session on one engine and always closes it, so probes never leak
pooled connections. A connection found dead (database restarted) is retried once on a fresh
connection, so the first probe after a restart already answers.

The drivers' messages name the server, the user and the database: :func:`public_message`
reduces them for anonymous callers of the health check.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy
import sqlalchemy.exc
import sqlalchemy.orm

from c2cwsgiutils._db_session import engine_name
from c2cwsgiutils._safety import never_raise
from c2cwsgiutils.health_check import EngineType


class _WrongVersionError(RuntimeError):
    """The database is not at the head revision (a message of ours: revisions and engine name)."""


def public_message(error: BaseException) -> str:
    """The failure message of the database and alembic checks for anonymous callers.

    Ours (wrong revision, no record of the model) as they are; the driver's reduced to its
    class (``database error: OperationalError``); any other to its class.
    """
    from pyramid.httpexceptions import HTTPNotFound

    if isinstance(error, _WrongVersionError | HTTPNotFound):
        return str(error)
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.orig is not None:
        return f"database error: {type(error.orig).__name__}"
    return type(error).__name__


def _bind_of(factory: Any) -> sqlalchemy.engine.Engine | None:
    kw = getattr(factory, "kw", None)
    bind = kw.get("bind") if isinstance(kw, dict) else getattr(factory, "bind", None)
    return bind if isinstance(bind, sqlalchemy.engine.Engine) else None


def engines_of(session: Any, engine_type: EngineType) -> list[sqlalchemy.engine.Engine]:
    """The distinct engines to probe for a ``SessionFactory``, a ``scoped_session`` or a ``sessionmaker``."""
    rw = getattr(session, "rw_engine", None) or getattr(session, "c2c_rw_bind", None)
    ro = getattr(session, "ro_engine", None) or getattr(session, "c2c_ro_bind", None)
    if rw is None:
        rw = _bind_of(getattr(session, "session_factory", session))
    if rw is None:
        raise ValueError(f"Cannot find the database engine of {session!r}")
    ro = ro or rw
    wanted = {
        EngineType.READ_ONLY: [ro],
        EngineType.WRITE_ONLY: [rw],
        EngineType.READ_AND_WRITE: [rw, ro],
    }[engine_type]
    return list(dict.fromkeys(wanted))


def _with_session(engine: sqlalchemy.engine.Engine, run: Callable[[sqlalchemy.orm.Session], Any]) -> Any:
    """Run ``run(session)`` in a new session of ``engine``, always closed; retry a dead connection once."""
    for attempt in (1, 2):
        try:
            with sqlalchemy.orm.Session(bind=engine) as session:
                return run(session)
        except sqlalchemy.exc.DBAPIError as error:
            if attempt == 1 and error.connection_invalidated:
                continue
            raise
    raise AssertionError  # pragma: no cover - the loop returns or raises


def db_check(
    engine: sqlalchemy.engine.Engine,
    query_cb: Callable[[sqlalchemy.orm.Session], Any] | None,
    at_least_one_model: Any,
) -> Callable[[Any], Any]:
    """The check of one engine: ``query_cb(session)``, a row of the model, or ``SELECT 1``."""

    def query(session: sqlalchemy.orm.Session) -> Any:
        if query_cb is not None:
            return query_cb(session)
        if at_least_one_model is not None:
            if session.query(at_least_one_model).first() is None:
                from pyramid.httpexceptions import HTTPNotFound

                raise HTTPNotFound(f"{at_least_one_model.__name__} record not found")
            return None
        session.execute(sqlalchemy.text("SELECT 1"))
        return None

    def check(request: Any) -> Any:
        del request
        start = time.perf_counter()
        try:
            return _with_session(engine, query)
        finally:
            _observe_db_check(engine, time.perf_counter() - start)

    return check


def _observe_db_check(engine: sqlalchemy.engine.Engine, seconds: float) -> None:
    """``<prefix>health_check_db_seconds{configuration, connection, check}`` (with prometheus_client)."""
    with never_raise("recording the database health check metric"):
        try:
            from c2cwsgiutils import _metrics

            histogram = _metrics.get().health_check_db_seconds
        except ImportError:
            return
        histogram.labels(configuration="<default>", connection=engine_name(engine), check="database").observe(
            seconds
        )


def _set_alembic_gauge(versions: dict[str, str], name: str, configuration: str) -> None:
    """``<prefix>alembic_version{version, name, configuration} = 1`` (with prometheus_client)."""
    with never_raise("recording the alembic version metric"):
        try:
            from c2cwsgiutils import _metrics

            gauge = _metrics.get().alembic_version
        except ImportError:
            return
        for version in set(versions.values()):
            gauge.labels(version=version, name=name, configuration=configuration).set(1)


def db_check_name(engine: sqlalchemy.engine.Engine) -> str:
    """``db_engine_<c2c_name>``."""
    return "db_engine_" + engine_name(engine)


def alembic_check_name(alembic_ini_path: str, name: str) -> str:
    """``alembic_`` + the ini path with ``/`` → ``_`` (outer ``_`` stripped) + ``_`` + the section name."""
    return "alembic_" + alembic_ini_path.replace("/", "_").strip("_") + "_" + name


def alembic_check(
    engines: list[sqlalchemy.engine.Engine],
    alembic_ini_path: str,
    name: str,
    version_schema: str | None,
    version_table: str | None,
) -> Callable[[Any], Any]:
    """A check that the version of each engine's database is the head of the alembic scripts.

    The heads are read once, now, with alembic's Python API (no subprocess).
    """
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    if not os.path.exists(alembic_ini_path):
        raise FileNotFoundError(f"alembic configuration not found: {alembic_ini_path}")
    config = Config(alembic_ini_path, ini_section=name)
    heads = frozenset(ScriptDirectory.from_config(config).get_heads())
    schema = version_schema or config.get_main_option("version_table_schema") or "public"
    table = sqlalchemy.table(
        version_table or config.get_main_option("version_table") or "alembic_version",
        sqlalchemy.column("version_num"),
        schema=schema,
    )
    query = sqlalchemy.select(table.c.version_num)

    def check(request: Any) -> Any:
        del request
        versions = {}
        for engine in engines:
            found = _with_session(engine, lambda session: frozenset(session.execute(query).scalars()))
            if found != heads:
                raise _WrongVersionError(
                    f"Wrong database version on {engine_name(engine)}: "
                    f"{', '.join(sorted(found)) or 'none'} instead of {', '.join(sorted(heads))}"
                )
            versions[engine_name(engine)] = ", ".join(sorted(found))
        _set_alembic_gauge(versions, name, alembic_ini_path)
        values = set(versions.values())
        return values.pop() if len(values) == 1 else versions

    return check
