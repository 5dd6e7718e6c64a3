"""``c2cwsgiutils-stats-db``: publish the sizes and row counts of the tables of a PostgreSQL database.

Usage::

    c2cwsgiutils-stats-db [config_uri] [config_vars...] --db URL --schema S [--schema S...]
        [--extra SQL...] [--extra-gauge SQL NAME HELP...]
        [--prometheus-url URL] [--prometheus-instance X]

Gauges (prefix ``C2C_PROMETHEUS_PREFIX``, default ``c2cwsgiutils_``), for every ordinary table
of the schemas (``public`` when no ``--schema`` is given):

- ``database_table_count{schema,table}``: the number of rows, as estimated by the last ``ANALYZE``
  (counted with ``count(*)`` for a table that was never analysed);
- ``database_table_size{schema,table}``: the size of the table (``pg_table_size``), in bytes;
- ``database_table_index_size{schema,table,index,fork}``: the size of each index, per fork
  (``main``, ``fsm``), in bytes;
- ``database_table_index_usage{schema,table,index,action}``: the index statistics (``scan``,
  ``read`` and ``fetch``: ``idx_scan``, ``idx_tup_read``, ``idx_tup_fetch``).

``--extra SQL`` runs a query that returns rows ``(metric, value)``, published as
``database_extra{metric}``; ``--extra-gauge SQL NAME HELP`` publishes such rows as
``database_<NAME>{metric}`` with the given help text.

With ``--prometheus-url``, the metrics are pushed to that Prometheus Pushgateway (job ``db_counts``,
grouping key ``instance`` when ``--prometheus-instance`` is given). Otherwise exactly one scrape is
served on the port ``C2C_PROMETHEUS_PORT`` (default 9090), then the command returns. It listens
on ``C2C_PROMETHEUS_BIND`` (default ``0.0.0.0``; ``127.0.0.1``, ``::1``, ``::`` for every
interface), as the services' metrics port does; it has no authentication: never publish it.

The collection is tried ``C2CWSGIUTILS_STATS_DB_TRYNUMBER`` times (default 10), with
``C2CWSGIUTILS_STATS_DB_SLEEP`` seconds between the tries (default 1): the database may still be
starting. A failing ``--extra`` query does not stop the others: it is logged, the metrics are
published, and the command exits with code 1. An invalid URL or a missing schema is reported on one
line, with exit code 1.

When ``config_uri`` is given, logging (and Sentry...) are set up from that ini file, as
:func:`c2cwsgiutils.setup_process.init` does; ``config_vars`` (``name=value``) are values for its
``%(name)s`` interpolations.

.. versionadded:: 6.0
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from c2cwsgiutils import _extras, _settings

__all__ = ["main"]

_LOG = logging.getLogger("c2cwsgiutils.scripts.stats_db")
_PROG = "c2cwsgiutils-stats-db"
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class _Settings:
    tries: int = _settings.knob(10, env="C2CWSGIUTILS_STATS_DB_TRYNUMBER", convert=int)
    sleep: float = _settings.knob(1.0, env="C2CWSGIUTILS_STATS_DB_SLEEP", convert=float)
    port: int = _settings.knob(9090, env="C2C_PROMETHEUS_PORT", convert=int)
    bind: str = _settings.knob("0.0.0.0", env="C2C_PROMETHEUS_BIND")  # noqa: S104  # the reference's
    prefix: str = _settings.knob("c2cwsgiutils_", env="C2C_PROMETHEUS_PREFIX")


class _FailureError(Exception):
    """An error reported on one line, with exit code 1."""


class _UnavailableError(Exception):
    """The database cannot be reached: worth another try."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description="Publish the sizes and row counts of the tables of a PostgreSQL database."
    )
    parser.add_argument("config_uri", nargs="?", help="ini file that configures logging (optional)")
    parser.add_argument("config_vars", nargs="*", default=[], help="values for the ini file, as name=value")
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of the database (postgresql://...)")
    parser.add_argument(
        "--schema", action="append", dest="schemas", metavar="SCHEMA", help="a schema (default: public)"
    )
    parser.add_argument(
        "--extra", action="append", default=[], metavar="SQL", help="query returning (metric, value) rows"
    )
    parser.add_argument(
        "--extra-gauge",
        action="append",
        nargs=3,
        default=[],
        metavar=("SQL", "NAME", "HELP"),
        help="query returning (metric, value) rows, published as the gauge database_NAME",
    )
    parser.add_argument("--prometheus-url", help="push the metrics to this Prometheus Pushgateway")
    parser.add_argument("--prometheus-instance", help="the instance grouping key on the Pushgateway")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``c2cwsgiutils-stats-db`` command line.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
    """
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except _FailureError as error:
        sys.stderr.write(f"{_PROG}: error: {error}\n")
        sys.exit(1)


def _run(args: argparse.Namespace) -> None:
    try:
        settings = _settings.resolve(_Settings, None)
        for module in ("sqlalchemy", "prometheus_client"):
            _extras.require(module, "standard", _PROG)
    except Exception as error:  # pyramid's ConfigurationError: invalid environment variable, missing extra
        raise _FailureError(str(error)) from error
    _setup_logging(args.config_uri, args.config_vars)
    engine = _engine(args.db)
    try:
        registry, errors = _retry(settings, lambda: _collect(engine, args, settings.prefix))
    finally:
        engine.dispose()
    _publish(registry, args, settings)
    if errors:
        raise _FailureError(
            f"{len(errors)} quer{'y' if len(errors) == 1 else 'ies'} failed; the first one: {errors[0]}"
        )


def _setup_logging(config_uri: str | None, config_vars: list[str]) -> None:
    if not config_uri:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        return
    from c2cwsgiutils import setup_process

    uri = _with_vars(config_uri, config_vars)
    try:
        setup_process.init(uri)
    except Exception as error:
        raise _FailureError(f"cannot load the configuration {config_uri}: {error}") from error


def _with_vars(config_uri: str, config_vars: list[str]) -> str:
    """Pass ``name=value`` values to the plaster loader as options of the URI (``?name=value``)."""
    if not config_vars:
        return config_uri
    values = []
    for item in config_vars:
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise _FailureError(f"invalid configuration variable {item!r}: expected name=value")
        values.append((name, value))
    uri, hash_, fragment = config_uri.partition("#")
    uri += ("&" if "?" in uri else "?") + urllib.parse.urlencode(values)
    return uri + hash_ + fragment


def _engine(url: str) -> Any:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError as error:
        raise _FailureError(
            "invalid database URL: expected postgresql://user:password@host:port/database"
        ) from error
    if parsed.get_backend_name() != "postgresql":
        raise _FailureError(f"only PostgreSQL is supported, not {parsed.get_backend_name()!r}")
    try:
        return sqlalchemy.create_engine(parsed, poolclass=NullPool, connect_args={"connect_timeout": 10})
    except (ImportError, sqlalchemy.exc.SQLAlchemyError) as error:
        raise _FailureError(f"cannot use the database driver of {parsed.drivername!r}: {error}") from error


def _retry(settings: _Settings, function: Callable[[], T]) -> T:
    tries = max(1, settings.tries)
    for attempt in range(1, tries + 1):
        try:
            return function()
        except _UnavailableError as error:
            if attempt == tries:
                raise _FailureError(f"{error} (after {tries} tries)") from error
            _LOG.warning(
                "Try %d of %d failed, trying again in %gs: %s", attempt, tries, settings.sleep, error
            )
            time.sleep(settings.sleep)
    raise AssertionError  # pragma: no cover  # the loop returns or raises


class _Gauges:
    """The gauges of one run, on a registry of their own (never the process-wide one)."""

    def __init__(self, prefix: str) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        self.prefix = prefix
        self.registry = CollectorRegistry()
        self._gauge = Gauge
        self.count = Gauge(
            f"{prefix}database_table_count",
            "Number of rows in the table (estimate)",
            ["schema", "table"],
            registry=self.registry,
        )
        self.size = Gauge(
            f"{prefix}database_table_size",
            "Size of the table, in bytes",
            ["schema", "table"],
            registry=self.registry,
        )
        self.index_size = Gauge(
            f"{prefix}database_table_index_size",
            "Size of the index, in bytes",
            ["schema", "table", "index", "fork"],
            registry=self.registry,
        )
        self.index_usage = Gauge(
            f"{prefix}database_table_index_usage",
            "Usage of the index (scans, tuples read, tuples fetched)",
            ["schema", "table", "index", "action"],
            registry=self.registry,
        )
        self.extra: dict[str, Any] = {}

    def extra_gauge(self, name: str, help_text: str) -> Any:
        if name not in self.extra:
            self.extra[name] = self._gauge(
                f"{self.prefix}database_{name}", help_text, ["metric"], registry=self.registry
            )
        return self.extra[name]


_TABLES = """
SELECT n.nspname, c.relname, c.reltuples, pg_table_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname IN :schemas
ORDER BY 1, 2
"""
_INDEXES = """
SELECT n.nspname, t.relname, ic.relname,
    pg_relation_size(i.indexrelid, 'main'), pg_relation_size(i.indexrelid, 'fsm'),
    s.idx_scan, s.idx_tup_read, s.idx_tup_fetch
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = i.indexrelid
WHERE t.relkind = 'r' AND n.nspname IN :schemas
ORDER BY 1, 2, 3
"""


def _collect(engine: Any, args: argparse.Namespace, prefix: str) -> tuple[Any, list[str]]:
    """Read the statistics; return the registry and the errors of the queries that failed."""
    import sqlalchemy

    gauges = _Gauges(prefix)
    errors: list[str] = []
    schemas = list(dict.fromkeys(args.schemas or ["public"]))
    try:
        with engine.connect() as connection:
            _check_schemas(connection, schemas)
            _tables(connection, gauges, schemas, errors)
            _indexes(connection, gauges, schemas)
            for query in args.extra:
                _extra(connection, gauges.extra_gauge("extra", "Extra metric"), query, errors)
            for query, name, help_text in args.extra_gauge:
                _extra(connection, gauges.extra_gauge(name, help_text), query, errors)
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as error:
        raise _UnavailableError(f"cannot read the database: {_first_line(error)}") from error
    return gauges.registry, errors


def _check_schemas(connection: Any, schemas: list[str]) -> None:
    import sqlalchemy

    query = sqlalchemy.text("SELECT nspname FROM pg_namespace WHERE nspname IN :schemas").bindparams(
        sqlalchemy.bindparam("schemas", expanding=True)
    )
    found = set(connection.execute(query, {"schemas": schemas}).scalars())
    missing = [schema for schema in schemas if schema not in found]
    if missing:
        raise _FailureError(f"schema not found in the database: {', '.join(missing)}")


def _tables(connection: Any, gauges: _Gauges, schemas: list[str], errors: list[str]) -> None:
    import sqlalchemy

    query = sqlalchemy.text(_TABLES).bindparams(sqlalchemy.bindparam("schemas", expanding=True))
    for schema, table, estimate, size in connection.execute(query, {"schemas": schemas}).all():
        if size is None:  # dropped since the list was read
            continue
        count = estimate
        if estimate < 0:  # never analysed: PostgreSQL has no estimate
            try:
                with connection.begin_nested():
                    count = connection.execute(
                        sqlalchemy.select(sqlalchemy.func.count()).select_from(
                            sqlalchemy.table(table, schema=schema)
                        )
                    ).scalar_one()
            except sqlalchemy.exc.DBAPIError as error:
                if isinstance(error, sqlalchemy.exc.OperationalError):
                    raise
                _LOG.error("Cannot count the rows of %s.%s: %s", schema, table, _first_line(error))
                errors.append(f"counting the rows of {schema}.{table}: {_first_line(error)}")
                count = None
        if count is not None:
            gauges.count.labels(schema=schema, table=table).set(count)
        gauges.size.labels(schema=schema, table=table).set(size)


def _indexes(connection: Any, gauges: _Gauges, schemas: list[str]) -> None:
    import sqlalchemy

    query = sqlalchemy.text(_INDEXES).bindparams(sqlalchemy.bindparam("schemas", expanding=True))
    for schema, table, index, main_size, fsm_size, scan, read, fetch in connection.execute(
        query, {"schemas": schemas}
    ).all():
        for fork, size in (("main", main_size), ("fsm", fsm_size)):
            if size is not None:
                gauges.index_size.labels(schema=schema, table=table, index=index, fork=fork).set(size)
        for action, value in (("scan", scan), ("read", read), ("fetch", fetch)):
            gauges.index_usage.labels(schema=schema, table=table, index=index, action=action).set(value or 0)


def _extra(connection: Any, gauge: Any, query: str, errors: list[str]) -> None:
    import sqlalchemy

    try:
        with connection.begin_nested():
            # On the DB-API cursor, without parameters: a ``%`` in the query is not a placeholder.
            cursor = connection.connection.cursor()
            try:
                cursor.execute(query)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        for metric, value in rows:
            gauge.labels(metric=str(metric)).set(float(value))
    except sqlalchemy.exc.OperationalError:
        raise
    except Exception as error:  # a wrong query, or rows that are not (metric, number)
        _LOG.error("The query %r failed: %s", query, _first_line(error))
        errors.append(f"{query!r}: {_first_line(error)}")


def _first_line(error: BaseException) -> str:
    import sqlalchemy

    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.orig is not None:
        error = error.orig
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _publish(registry: Any, args: argparse.Namespace, settings: _Settings) -> None:
    if args.prometheus_url:
        from prometheus_client import push_to_gateway

        grouping_key = {"instance": args.prometheus_instance} if args.prometheus_instance else None

        def push() -> None:
            try:
                push_to_gateway(
                    args.prometheus_url, job="db_counts", registry=registry, grouping_key=grouping_key
                )
            except OSError as error:  # URLError and HTTPError derive from it
                raise _UnavailableError(f"cannot push to {args.prometheus_url}: {error}") from error

        _retry(settings, push)
        _LOG.info("Metrics pushed to %s", args.prometheus_url)
        return
    from prometheus_client import make_wsgi_app

    host = settings.bind.strip("[]")  # "[::1]" as in a URL
    try:
        family = socket.getaddrinfo(host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        server_class = _Server6 if family[0][0] == socket.AF_INET6 else WSGIServer
        server = make_server(
            host, settings.port, make_wsgi_app(registry), server_class, handler_class=_QuietHandler
        )
    except OSError as error:
        raise _FailureError(
            f"cannot listen on {host!r} (C2C_PROMETHEUS_BIND) port {settings.port}: {error}"
        ) from error
    with server:
        _LOG.info("Serving the metrics for one scrape on %s port %d", host, settings.port)
        server.handle_request()


class _Server6(WSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # name of the overridden method
        _LOG.info("Scraped by %s: %s", self.address_string(), format % args)
