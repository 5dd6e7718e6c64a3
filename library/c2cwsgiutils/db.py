"""SQLAlchemy sessions on a primary ("master") and a read replica ("slave") database.

``init(config, "sqlalchemy", "sqlalchemy_slave")`` builds the engines from the settings
``sqlalchemy.url``, ``sqlalchemy.pool_size``, ... (and ``sqlalchemy_slave.*``), and adds
``request.dbsession``: a session joined to the request transaction (``request.tm``, pyramid_tm
with ``tm.manager_hook = pyramid_tm.explicit_manager`` and ``zope.sqlalchemy.register``),
committed at the end of the request, aborted when the view raises, answers an error or dooms the
transaction. The session is closed with its transaction, so even a request that only reads gives
its connection back to the pool (rolled back there) instead of leaving it idle in transaction.

The engine of a request is chosen from ``"<METHOD> <request.path>"``:

1. maintenance mode (:data:`force_readonly`, see :func:`set_force_readonly`) → replica;
2. a ``force_master`` regular expression matches (``re.match``) → primary;
3. ``GET``, ``HEAD``, ``OPTIONS`` or a ``force_slave`` expression matches → replica;
4. otherwise → primary.

The engine is given to each new session (the shared ``sessionmaker`` is never reconfigured), so
concurrent requests in threads always get their own engine.

Options (see the settings table of the README):

- ``C2C_DB_READ_YOUR_WRITES`` / ``c2c.db.read_your_writes`` (off by default): a request routed to
  the replica reads from it until its first write; that write and the rest of the request use
  the primary (so the request reads what it wrote).
- ``C2C_SQL_REQUEST_ID`` / ``c2c.sql_request_id`` (a real boolean, off by default): inside a
  request, each database transaction sets PostgreSQL's ``application_name`` to the request id
  (local to the transaction), so that ``log_line_prefix = '%a '`` and ``pg_stat_activity`` show
  it: one more round trip per database transaction. When off, nothing is installed.
- ``C2C_SQLALCHEMY_POOL_PRE_PING`` / ``c2c.db.pool_pre_ping`` (on by default): the engines made
  here test a pooled connection before handing it out (SQLAlchemy's ``pool_pre_ping``), so the
  first request of a worker after a database restart or failover does not fail on a dead
  connection. An explicit ``<prefix>.pool_pre_ping`` in the settings wins.

Test hooks: the setting ``dbengine`` (an ``Engine``) replaces both engines;
``request.environ["app.dbsession"]`` replaces ``request.dbsession``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy
import sqlalchemy.orm

from c2cwsgiutils import _context, _process_state, _settings
from c2cwsgiutils._db_session import C2CSession, compile_patterns, set_engine_name, wants_readwrite
from c2cwsgiutils._db_session import engine_name as _engine_name
from c2cwsgiutils._safety import swallow

__all__ = [
    "DbSettings",
    "SessionFactory",
    "create_session",
    "force_readonly",
    "get_engine",
    "get_session_factory",
    "get_tm_session",
    "get_tm_session_pyramid",
    "init",
    "set_force_readonly",
    "setup_session",
    "tweens",
]

_LOG = logging.getLogger(__name__)
_FORCE_READONLY_LOCK = threading.Lock()
_APPLICATION_NAME_MAX = 63  # NAMEDATALEN - 1

#: Maintenance mode: when true, every new session uses the replica (also for writes). Set it
#: with :func:`set_force_readonly` (the maintenance view does it in every process).
force_readonly = False

#: Namespace of the tweens added by the deprecated :func:`setup_session` / :func:`create_session`
#: (``c2cwsgiutils.db.tweens.<name>``).
tweens = types.SimpleNamespace()

Patterns = Iterable[str | re.Pattern[str]] | None


@_settings.frozen_dataclass
class DbSettings:
    """Settings of the database sessions."""

    read_your_writes: bool = _settings.knob(
        False,
        env="C2C_DB_READ_YOUR_WRITES",
        ini="c2c.db.read_your_writes",
        convert=_settings.as_bool,
        doc="A request routed to the replica switches to the primary at its first write and stays there.",
    )
    sql_request_id: bool = _settings.knob(
        False,
        env="C2C_SQL_REQUEST_ID",
        ini="c2c.sql_request_id",
        convert=_settings.as_bool,
        doc="Set PostgreSQL's `application_name` to the request id in each transaction of a request.",
    )
    pool_pre_ping: bool = _settings.knob(
        True,
        env="C2C_SQLALCHEMY_POOL_PRE_PING",
        ini="c2c.db.pool_pre_ping",
        convert=_settings.as_bool,
        doc="Engines made by `db.init`, `db.get_engine` and `db.setup_session` test a pooled connection "
        "before using it, so a request never fails on a connection the database closed (a ping per "
        "checkout); an explicit `sqlalchemy.pool_pre_ping` wins.",
    )


@_process_state.on_reset
def _reset_force_readonly() -> None:
    global force_readonly  # noqa: PLW0603  # see set_force_readonly
    with _FORCE_READONLY_LOCK:
        force_readonly = False


def set_force_readonly(value: bool) -> None:
    """Switch the maintenance mode of this process: every new session uses the replica."""
    global force_readonly  # noqa: PLW0603  # the public process-wide flag of the spec
    with _FORCE_READONLY_LOCK:
        if force_readonly != bool(value):
            _LOG.warning("Database maintenance mode (force read-only): %s", bool(value))
        force_readonly = bool(value)


class SessionFactory(sqlalchemy.orm.sessionmaker[C2CSession]):
    """A ``sessionmaker`` that chooses the engine of each session from the request.

    Args:
        force_master: Regular expressions on ``"METHOD /path"`` that force the primary.
        force_slave: Regular expressions on ``"METHOD /path"`` that force the replica.
        ro_engine: The replica engine.
        rw_engine: The primary engine.
        read_your_writes: Route the reads of a replica session to the replica only until its first
            write (then everything goes to the primary).
    """

    def __init__(
        self,
        force_master: Patterns,
        force_slave: Patterns,
        ro_engine: sqlalchemy.engine.Engine,
        rw_engine: sqlalchemy.engine.Engine,
        *,
        read_your_writes: bool = False,
    ) -> None:
        """Build the factory (sessions are bound to ``rw_engine`` by default)."""
        super().__init__(bind=rw_engine, class_=C2CSession)
        self.master_paths = compile_patterns(force_master)
        self.slave_paths = compile_patterns(force_slave)
        self.ro_engine = ro_engine
        self.rw_engine = rw_engine
        self.read_your_writes = read_your_writes

    def readwrite(self, request: Any) -> bool:
        """Whether ``request`` goes to the primary (see the module documentation)."""
        if not self.master_paths and not self.slave_paths:  # the path is not needed: not computed
            return wants_readwrite(request.method, "", (), (), force_readonly=force_readonly)
        return wants_readwrite(
            request.method,
            request.path,
            self.master_paths,
            self.slave_paths,
            force_readonly=force_readonly,
        )

    def engine_name(self, readwrite: bool) -> str:
        """The ``c2c_name`` of the primary (``readwrite``) or of the replica engine."""
        return _engine_name(self.rw_engine if readwrite else self.ro_engine)

    def __call__(self, request: Any = None, readwrite: bool | None = None, **local_kw: Any) -> C2CSession:
        """Create a session for ``request`` (or on the primary when ``readwrite`` is true).

        Args:
            request: The Pyramid request that chooses the engine, or None.
            readwrite: Force the primary (True) or the replica (False); default: from the request,
                the primary without request.
            local_kw: Other arguments of ``Session``.
        """
        if readwrite is None:
            readwrite = True if request is None else self.readwrite(request)
        if force_readonly:
            readwrite = False
        if "bind" in local_kw:
            return super().__call__(**local_kw)
        engine = self.rw_engine if readwrite else self.ro_engine
        session = super().__call__(bind=engine, **local_kw)
        if (
            self.read_your_writes
            and not readwrite
            and not force_readonly
            and self.ro_engine is not self.rw_engine
        ):
            session.route_reads(self.ro_engine, self.rw_engine)
        return session


def get_engine(settings: Mapping[str, Any], prefix: str = "sqlalchemy.") -> sqlalchemy.engine.Engine:
    """Create an engine from the settings that start with ``prefix`` (``url``, ``pool_size``, ...).

    A ``postgresql://`` URL (no driver named) uses the driver that is installed: SQLAlchemy 2.0
    means psycopg2 by it and 2.1 psycopg 3, while a service has the one its lock file pins.
    ``pool_pre_ping`` is on unless ``C2C_SQLALCHEMY_POOL_PRE_PING`` is false or the settings
    give ``<prefix>pool_pre_ping``.
    """
    settings = dict(settings)
    key = prefix + "pool_pre_ping"
    # SQLAlchemy's engine_from_config does not convert this key: the ini's "false" would be true.
    pre_ping = settings[key] if key in settings else _settings.resolve(DbSettings, settings).pool_pre_ping
    settings[key] = _settings.as_bool(pre_ping)
    url = settings.get(prefix + "url")
    if isinstance(url, str):
        settings[prefix + "url"] = postgresql_url(url)
    engine = sqlalchemy.engine_from_config(settings, prefix)
    set_engine_name(engine, prefix.rstrip("."))
    _forget_connections_after_fork(engine)
    return engine


_POSTGRESQL_DRIVERS = (("psycopg2", "psycopg2"), ("psycopg", "psycopg"))


def postgresql_url(url: str) -> str:
    """``url`` with the installed PostgreSQL driver when it names none and SQLAlchemy's default is missing.

    Other URLs are returned as they are.
    """
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    parsed = sqlalchemy.engine.make_url(url)
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError:
        for driver, module in _POSTGRESQL_DRIVERS:
            if importlib.util.find_spec(module) is not None:
                _LOG.info("PostgreSQL through %s: SQLAlchemy's default driver is not installed", driver)
                return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)
    return url


def _forget_connections_after_fork(engine: sqlalchemy.engine.Engine) -> None:
    """A forked process (a worker of a preloaded gunicorn) never uses its parent's connections.

    Two processes on one PostgreSQL connection mix their queries and answers. The child drops the
    pool's connections without closing them (closing would end the parent's sessions too) and
    opens its own.
    """
    reference = weakref.ref(engine)

    def forget() -> None:
        alive = reference()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=forget)


def get_session_factory(engine: sqlalchemy.engine.Engine) -> SessionFactory:
    """A session factory on a single engine (for scripts)."""
    return SessionFactory(None, None, engine, engine)


def get_tm_session(
    session_factory: Callable[..., sqlalchemy.orm.Session], transaction_manager: Any
) -> sqlalchemy.orm.Session:
    """A new session joined to ``transaction_manager`` (``transaction.manager`` in scripts)."""
    import zope.sqlalchemy

    session = session_factory()
    zope.sqlalchemy.register(session, transaction_manager=transaction_manager)
    return session


def get_tm_session_pyramid(
    session_factory: Callable[..., sqlalchemy.orm.Session], transaction_manager: Any, request: Any
) -> sqlalchemy.orm.Session:
    """A new session for ``request`` (engine chosen from it) joined to ``transaction_manager``."""
    import zope.sqlalchemy

    is_ours = isinstance(session_factory, SessionFactory)
    session: sqlalchemy.orm.Session = session_factory(request) if is_ours else session_factory()
    zope.sqlalchemy.register(session, transaction_manager=transaction_manager)
    return session


def _engines(
    config: Any, master_prefix: str, slave_prefix: str | None
) -> tuple[sqlalchemy.engine.Engine, sqlalchemy.engine.Engine]:
    settings = config.registry.settings
    test_engine = settings.get("dbengine")
    if test_engine is not None:
        return test_engine, test_engine
    rw_engine = get_engine(settings, master_prefix + ".")
    ro_engine = rw_engine
    if slave_prefix and settings.get(slave_prefix + ".url") != settings.get(master_prefix + ".url"):
        _LOG.info("Using a replica database for the read-only requests")
        ro_engine = get_engine(settings, slave_prefix + ".")
    return rw_engine, ro_engine


# DBAPI drivers whose cursors take ``%s`` parameters: the statement goes straight to the driver.
_FORMAT_DRIVERS = frozenset({"psycopg", "psycopg2"})


def _set_application_name(session: Any, transaction: Any, connection: Any) -> None:
    """``after_begin`` listener: the request id becomes the transaction's ``application_name``.

    ``set_config(..., true)`` is local to the transaction, so a pooled connection never carries
    a previous request's id. With psycopg and psycopg2 the statement goes through the DBAPI
    cursor: it is not an application statement, so SQLAlchemy's events (the SQL metrics, the SQL
    profiler) do not see it.
    """
    del session, transaction
    request = _context.current_request.get()
    if request is None or connection.dialect.name != "postgresql":
        return
    try:
        _execute_set_application_name(connection, request)
    except Exception:
        swallow("setting the request id as the SQL application_name")


def _execute_set_application_name(connection: Any, request: Any) -> None:
    name = str(request.c2c_request_id).encode()[:_APPLICATION_NAME_MAX].decode(errors="ignore")
    if connection.dialect.driver in _FORMAT_DRIVERS:
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            cursor.execute("SELECT set_config('application_name', %s, true)", (name,))
        finally:
            cursor.close()
    else:
        connection.exec_driver_sql("SELECT set_config('application_name', %(name)s, true)", {"name": name})


def _install_sql_request_id(config: Any, factory: Any) -> None:
    if _settings.get(config.registry, DbSettings).sql_request_id:
        sqlalchemy.event.listen(factory, "after_begin", _set_application_name)


def init(
    config: Any,
    master_prefix: str,
    slave_prefix: str | None = None,
    force_master: Patterns = None,
    force_slave: Patterns = None,
) -> SessionFactory:
    """Configure the engines and ``request.dbsession``; return the session factory.

    Args:
        config: The Pyramid configurator.
        master_prefix: Settings prefix of the primary engine (e.g. ``sqlalchemy``).
        slave_prefix: Settings prefix of the replica engine (e.g. ``sqlalchemy_slave``); no replica
            when None or when its URL is the primary's.
        force_master: Regular expressions on ``"METHOD /path"`` that force the primary.
        force_slave: Regular expressions on ``"METHOD /path"`` that force the replica.
    """
    import pyramid_tm

    # One explicit manager per request (request.tm): a session or code that uses it outside the
    # request's transaction fails loudly instead of beginning a transaction nobody ends.
    config.add_settings({"tm.manager_hook": pyramid_tm.explicit_manager})
    config.include(pyramid_tm)
    rw_engine, ro_engine = _engines(config, master_prefix, slave_prefix)
    conf = _settings.get(config.registry, DbSettings)
    factory = SessionFactory(
        force_master, force_slave, ro_engine, rw_engine, read_your_writes=conf.read_your_writes
    )
    _install_sql_request_id(config, factory)
    config.registry["dbsession_factory"] = factory

    def dbsession(request: Any) -> sqlalchemy.orm.Session:
        session: sqlalchemy.orm.Session | None = request.environ.get("app.dbsession")
        if session is None:
            session = get_tm_session_pyramid(factory, request.tm, request)
        return session

    config.add_request_method(dbsession, "dbsession", reify=True)
    return factory


def _deprecated(what: str) -> None:
    warnings.warn(f"c2cwsgiutils.db.{what} is deprecated, use c2cwsgiutils.db.init", DeprecationWarning, 3)


def _add_tween(config: Any, name: str, session: sqlalchemy.orm.scoped_session[Any]) -> None:
    """Per request, give the thread's scoped session a session on the request's engine."""
    factory = session.session_factory
    assert isinstance(factory, SessionFactory)

    def tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
        del registry

        def db_chooser_tween(request: Any) -> Any:
            session.remove()
            session.registry.set(factory(request))
            try:
                return handler(request)
            finally:
                session.remove()

        return db_chooser_tween

    setattr(tweens, name, tween_factory)
    config.add_tween("c2cwsgiutils.db.tweens." + name, over="pyramid_tm.tm_tween_factory")


def _scoped(
    config: Any,
    name: str,
    rw_engine: sqlalchemy.engine.Engine,
    ro_engine: sqlalchemy.engine.Engine,
    force_master: Patterns,
    force_slave: Patterns,
) -> sqlalchemy.orm.scoped_session[Any]:
    factory = SessionFactory(force_master, force_slave, ro_engine, rw_engine)
    _install_sql_request_id(config, factory)
    session = sqlalchemy.orm.scoped_session(factory)
    session.c2c_rw_bind = rw_engine  # type: ignore[attr-defined]  # read by the health checks
    session.c2c_ro_bind = ro_engine  # type: ignore[attr-defined]  # read by the health checks
    _add_tween(config, name, session)
    return session


def setup_session(
    config: Any,
    master_prefix: str,
    slave_prefix: str | None = None,
    force_master: Patterns = None,
    force_slave: Patterns = None,
) -> tuple[sqlalchemy.orm.scoped_session[Any], sqlalchemy.engine.Engine, sqlalchemy.engine.Engine]:
    """Return a scoped session, the primary and the replica engines (deprecated, use :func:`init`).

    A tween ``c2cwsgiutils.db.tweens.<master_prefix>`` gives each request a session on its engine.

    .. deprecated:: 6.0
    """
    _deprecated("setup_session")
    rw_engine, ro_engine = _engines(config, master_prefix, slave_prefix)
    session = _scoped(config, master_prefix, rw_engine, ro_engine, force_master, force_slave)
    return session, rw_engine, ro_engine


def create_session(
    config: Any,
    name: str,
    url: str,
    slave_url: str | None = None,
    force_master: Patterns = None,
    force_slave: Patterns = None,
    **engine_kw: Any,
) -> sqlalchemy.orm.scoped_session[Any]:
    """Return a scoped session on ``url`` / ``slave_url`` (deprecated, use :func:`init`).

    The engines are named ``<name>_master`` and ``<name>_slave``; a tween
    ``c2cwsgiutils.db.tweens.<name>`` gives each request a session on its engine.

    .. deprecated:: 6.0
    """
    _deprecated("create_session")
    engine_kw.setdefault("pool_pre_ping", _settings.get(config.registry, DbSettings).pool_pre_ping)
    rw_engine = sqlalchemy.create_engine(url, **engine_kw)
    set_engine_name(rw_engine, name + "_master")
    ro_engine = rw_engine
    if slave_url and slave_url != url:
        ro_engine = sqlalchemy.create_engine(slave_url, **engine_kw)
        set_engine_name(ro_engine, name + "_slave")
    return _scoped(config, name, rw_engine, ro_engine, force_master, force_slave)
