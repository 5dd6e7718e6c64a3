"""Health checks: ``GET {base}/health_check`` runs the registered checks up to ``max_level``.

Levels: 0 is a ping (no check), 1 holds what is vital to the service (the default, used by load
balancers), 2 and more are for monitoring. Checks run concurrently, each bounded by a timeout,
so that one hanging dependency gives a failure instead of a hung probe.

The report has exactly the reference shape ``{"successes": {...}, "failures": {...}}``: each
entry has ``timing`` and ``level``, a success has ``result`` when its check returned something,
a failure has ``message`` and, optionally, ``result`` (:class:`JsonCheckException`) and
``stacktrace``. There is no other top-level key (clients and test suites compare whole reports);
the HTTP status carries the outcome: 200, or 500 when a check failed. ``max_level=0`` is a ping:
``{"successes": {}, "failures": {}}``.

The view is public, so what it tells depends on who asks. With the secret or the GitHub login
(:func:`c2cwsgiutils.auth.is_auth`), or in development mode: everything. Anyone else gets what
monitoring needs: names, levels, timings and failure messages, without ``result`` and
``stacktrace`` (a Redis check's result is the server's ``INFO``: version, OS, paths, memory).
The failure messages of the library's own checks are reduced to their kind (``HTTP status
503``, ``database error: OperationalError``) since the drivers' messages name hosts, users and
databases; the ``version`` check keeps its result (the git hash, as ``releaseId`` does).
``C2C_HEALTH_CHECK_PUBLIC_DETAILS=true`` shows results and full messages to everyone (as 6.0).

With ``Accept: application/health+json`` the report follows the IETF health check draft instead
(``status`` ``pass`` or ``fail``, ``checks``, ``releaseId``), with the same HTTP status.

.. versionchanged:: 6.2
   The legacy report no longer has a top-level ``status`` (it was an addition of this
   implementation, absent from the reference). Results and internal messages need the secret.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import enum
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from c2cwsgiutils import _process_state, _settings
from c2cwsgiutils._safety import never_raise

__all__ = [
    "EngineType",
    "HealthCheck",
    "HealthCheckSettings",
    "JsonCheckException",
    "drain",
    "drain_on_signal",
    "is_draining",
    "stop_draining",
]

_LOG = logging.getLogger(__name__)
_HEALTH_JSON = "application/health+json"
_DRAINING = threading.Event()


def drain() -> None:
    """Mark this process as shutting down: reports above level 0 fail from now on."""
    if not _DRAINING.is_set():
        _LOG.warning("Draining: the health check fails above level 0 until the process exits")
    _DRAINING.set()


def is_draining() -> bool:
    """Whether :func:`drain` was called in this process."""
    return _DRAINING.is_set()


@_process_state.on_reset
def stop_draining() -> None:
    """Cancel :func:`drain` (for tests, or a shutdown that was called off)."""
    _DRAINING.clear()


def drain_on_signal(delay: float, signum: int = signal.SIGTERM) -> None:
    """On ``signum``, :func:`drain` at once and deliver the signal to its previous handler ``delay`` s later.

    Must be called from the main thread (Python's rule for signal handlers). Load balancers see
    the failing health check during ``delay`` while the process still serves requests (its
    listening sockets stay open). Then the signal reaches the handler that was there before (in
    a gunicorn worker: a graceful stop). Without one (Python's default, which would kill the
    process, and which the kernel ignores in a container's PID 1), :class:`SystemExit` is raised
    in the main thread, as Ctrl-C raises :class:`KeyboardInterrupt`: waitress finishes the
    requests in flight (5 s at most) and ``pserve`` exits with status 0. A second ``signum``
    during the delay stops at once; calling this again replaces the delay instead of adding one.

    .. versionchanged:: 6.2
       Without a previous handler, the stop is :class:`SystemExit` (was the default action).
    """
    previous = signal.getsignal(signum)
    if isinstance(previous, _DrainHandler):
        previous = previous.previous
    signal.signal(signum, _DrainHandler(delay, signum, previous))


class _DrainHandler:
    def __init__(self, delay: float, signum: int, previous: Any) -> None:
        self.delay = delay
        self.signum = signum
        self.previous = previous
        self._timer: threading.Timer | None = None

    def __call__(self, number: int, frame: Any) -> None:
        if self._timer is None:  # first time: drain, and send the signal again later
            drain()
            self._timer = threading.Timer(self.delay, os.kill, (os.getpid(), self.signum))
            self._timer.daemon = True
            self._timer.start()
            return
        self._timer.cancel()  # the delay is over, or a second signal cut it short: no third one
        if callable(self.previous):
            self.previous(number, frame)
        elif self.previous in (signal.SIG_DFL, None):
            # A further signal gets the default action: it kills at once (but in a container's PID 1).
            signal.signal(self.signum, signal.SIG_DFL)
            raise SystemExit(0)


class EngineType(enum.Enum):
    """Which engines of a session factory a database check probes."""

    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_AND_WRITE = 3


class JsonCheckException(Exception):  # noqa: N818  # public name of the spec
    """A check failure that carries a JSON-able ``json`` payload, reported as ``result``."""

    def __init__(self, message: str, json: Any) -> None:
        """Build the exception.

        Args:
            message: Failure message.
            json: JSON-able value reported as the check's ``result``.
        """
        super().__init__(message)
        self.json = json


@_settings.frozen_dataclass
class HealthCheckSettings:
    """Settings of the health check view."""

    timeout: float = _settings.knob(
        5.0,
        env="C2C_HEALTH_CHECK_TIMEOUT",
        ini="c2c.health_check.timeout",
        convert=float,
        doc="Time (seconds) after which a running check is reported as failed.",
    )
    threads: int = _settings.knob(
        8,
        env="C2C_HEALTH_CHECK_THREADS",
        ini="c2c.health_check.threads",
        convert=int,
        doc="Maximum number of checks that run at the same time.",
    )
    drain_seconds: float = _settings.knob(
        0.0,
        env="C2C_HEALTH_CHECK_DRAIN_SECONDS",
        ini="c2c.health_check.drain_seconds",
        convert=float,
        doc="When > 0, SIGTERM first makes the health check fail (above level 0) for that many "
        "seconds while requests are still served, then stops the server gracefully (gunicorn "
        "workers, waitress). The base image and the generated services set 5; 0: stop at once.",
    )
    public_details: bool = _settings.knob(
        False,
        env="C2C_HEALTH_CHECK_PUBLIC_DETAILS",
        ini="c2c.health_check.public_details",
        convert=_settings.as_bool,
        doc="Show the checks' results and full failure messages without the secret (as 6.0); "
        "stack traces still need the secret or development mode.",
    )


@_settings.frozen_dataclass
class _Check:
    name: str
    run: Callable[[Any], Any]
    level: int
    # The failure message for anonymous callers; None: the application's own message, shown as is.
    public_message: Callable[[BaseException], str] | None = None
    public_result: bool = False


class HealthCheck:
    """The registry of health checks of an application; creating it adds the view.

    Args:
        config: The Pyramid configurator.
    """

    def __init__(self, config: Any) -> None:
        """Register the ``c2c_health_check`` route and view."""
        self._checks: list[_Check] = []
        self._lock = threading.Lock()
        registry = config.registry
        self._settings = _settings.get(registry, HealthCheckSettings)
        self._core = _settings.get(registry, _settings.CoreSettings)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, self._settings.threads), thread_name_prefix="c2c_health_check"
        )
        registry["c2cwsgiutils.health_check"] = self
        config.add_route("c2c_health_check", self._core.base_path + "/health_check", request_method="GET")
        config.add_view(self._view, route_name="c2c_health_check", http_cache=0)
        if self._settings.drain_seconds > 0 and threading.current_thread() is threading.main_thread():
            drain_on_signal(self._settings.drain_seconds)
        self._config = config
        redis_name = _configured_redis(config.get_settings())
        if redis_name:
            self.add_redis_check(redis_name, level=2)
            from c2cwsgiutils import version

            if version.get_version(registry) is not None:
                self.add_version_check(level=2)

    start_draining = staticmethod(drain)

    def add_redis_check(self, name: str | None = None, level: int = 1) -> None:
        """Add a check that Redis answers (it fails when Redis is down).

        Args:
            name: Name of the check (default: the configured sentinels or URL).
            level: Level of the check.
        """
        from c2cwsgiutils import _redis_checks

        settings = self._config.get_settings()
        name = name or _configured_redis(settings)
        if not name:
            msg = "No Redis configured (C2C_REDIS_URL or C2C_REDIS_SENTINELS): give the check a name"
            raise RuntimeError(msg)
        self._add(_Check(name, _redis_checks.make_redis_check(settings), level, _redis_checks.public_message))

    def add_version_check(self, name: str = "version", level: int = 2) -> None:
        """Add a check that every process of the service runs the same version (through broadcast).

        Args:
            name: Name of the check.
            level: Level of the check.
        """
        from c2cwsgiutils import _redis_checks

        check = _redis_checks.make_version_check(self._config.registry)
        # The git hash is public anyway (releaseId), and monitoring compares it across instances.
        self._add(_Check(name, check, level, _redis_checks.public_message, public_result=True))

    @property
    def names(self) -> list[str]:
        """Names of the registered checks, in registration order."""
        return [check.name for check in self._checks]

    def add_custom_check(self, name: str, check_cb: Callable[[Any], Any], level: int = 1) -> None:
        """Add a check: ``check_cb(request)`` returns a JSON-able result or raises on failure.

        Args:
            name: Name of the check in the report and in the ``checks`` filter.
            check_cb: The check.
            level: Level of the check (1 = vital, 2+ = monitoring).

        The message of an exception it raises is shown to anyone: keep internals (hosts, URLs,
        credentials) out of it. Its result is shown only with the secret.
        """
        self._add(_Check(name, check_cb, level))

    def _add(self, check: _Check) -> None:
        with self._lock:
            if any(known.name == check.name for known in self._checks):
                msg = f"A health check named '{check.name}' is already registered"
                raise ValueError(msg)
            self._checks.append(check)

    def add_url_check(
        self,
        url: str | Callable[[Any], str],
        params: Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None = None,
        name: str | None = None,
        check_cb: Callable[[Any, Any], Any] = lambda _request, _response: None,
        timeout: float = 3,
        level: int = 1,
    ) -> None:
        """Add a check that GETs ``url`` and fails on a non-2xx answer.

        Args:
            url: The URL, or a function of the request that returns it.
            params: Query parameters, or a function of the request that returns them.
            headers: Headers, or a function of the request that returns them.
            name: Name of the check (default: the URL).
            check_cb: ``check_cb(request, response)`` gives the result (or raises).
            timeout: Timeout of the HTTP call, in seconds.
            level: Level of the check.
        """
        import requests

        def check(request: Any) -> Any:
            the_url = url(request) if callable(url) else url
            the_params = params(request) if callable(params) else params
            the_headers = dict(headers(request) if callable(headers) else headers or {})
            request_id = getattr(request, "c2c_request_id", None)
            if request_id:
                the_headers.setdefault("X-Request-ID", request_id)
            response = requests.get(the_url, params=the_params, headers=the_headers, timeout=timeout)
            response.raise_for_status()
            return check_cb(request, response)

        def public_message(error: BaseException) -> str:
            # requests' messages carry the URL (its query may hold a token); check_cb's are the application's.
            if not isinstance(error, requests.RequestException):
                return str(error)
            status = getattr(error.response, "status_code", None)
            return f"HTTP status {status}" if status is not None else type(error).__name__

        self._add(_Check(name or str(url), check, level, public_message))

    def add_db_session_check(
        self,
        session: Any,
        query_cb: Callable[[Any], Any] | None = None,
        at_least_one_model: Any = None,
        level: int = 1,
        engine_type: EngineType = EngineType.READ_AND_WRITE,
    ) -> None:
        """Add one check per database engine, named ``db_engine_<c2c_name>``.

        Args:
            session: A ``SessionFactory`` (from :func:`c2cwsgiutils.db.init`), or the scoped session
                of the deprecated ``setup_session``, or any ``sessionmaker``.
            query_cb: ``query_cb(session)`` runs the check query (its return value is the result).
            at_least_one_model: Without ``query_cb``: an ORM class that must have at least a row.
            level: Level of the checks.
            engine_type: Probe the replica, the primary or both (one check when they are the same).
        """
        from c2cwsgiutils import _health_check_db

        for engine in _health_check_db.engines_of(session, engine_type):
            check = _health_check_db.db_check(engine, query_cb, at_least_one_model)
            name = _health_check_db.db_check_name(engine)
            self._add(_Check(name, check, level, _health_check_db.public_message))

    def add_alembic_check(
        self,
        session: Any,
        alembic_ini_path: str,
        level: int = 2,
        name: str = "alembic",
        version_schema: str | None = None,
        version_table: str | None = None,
    ) -> None:
        """Add a check that the databases are at the head revision of the alembic scripts.

        The check is named ``alembic_<ini path with / as _>_<name>`` (``/app/alembic.ini`` →
        ``alembic_app_alembic.ini_alembic``); heads are read once, with alembic's Python API.

        Args:
            session: As for :meth:`add_db_session_check` (the primary and the replica are checked).
            alembic_ini_path: Path of the alembic ini file.
            level: Level of the check.
            name: Section of the ini file.
            version_schema: Schema of the version table (default: the ini's
                ``version_table_schema``, else ``public``).
            version_table: Version table (default: the ini's ``version_table``, else
                ``alembic_version``).
        """
        from c2cwsgiutils import _health_check_db

        engines = _health_check_db.engines_of(session, EngineType.READ_AND_WRITE)
        check = _health_check_db.alembic_check(engines, alembic_ini_path, name, version_schema, version_table)
        check_name = _health_check_db.alembic_check_name(alembic_ini_path, name)
        self._add(_Check(check_name, check, level, _health_check_db.public_message))

    def _run(self, request: Any, max_level: int, only: frozenset[str] | None) -> dict[str, Any]:
        if _DRAINING.is_set() and max_level > 0:
            failure = {"message": "the process is shutting down", "timing": 0.0, "level": 1}
            return {"successes": {}, "failures": {"draining": failure}}
        selected = [
            check
            for check in self._checks
            if check.level <= max_level and (only is None or check.name in only)
        ]
        # Computed only when a check runs: a ping never asks GitHub for the user's permission.
        authorised = bool(selected) and (self._core.development or _is_auth(request))
        details = authorised or self._settings.public_details
        futures = {
            check: self._pool.submit(contextvars.copy_context().run, _timed, check, request)
            for check in selected
        }
        deadline = time.monotonic() + self._settings.timeout
        successes: dict[str, Any] = {}
        failures: dict[str, Any] = {}
        for check, future in futures.items():
            try:
                timing, result = future.result(timeout=max(0.0, deadline - time.monotonic()))
                entry: dict[str, Any] = {"timing": timing, "level": check.level}
                if result is not None and (details or check.public_result):
                    entry["result"] = result
                successes[check.name] = entry
            except concurrent.futures.TimeoutError:
                failures[check.name] = {
                    "message": f"timeout after {self._settings.timeout} s",
                    "timing": self._settings.timeout,
                    "level": check.level,
                }
                _LOG.warning("Health check %s timed out after %s s", check.name, self._settings.timeout)
            except _CheckFailedError as error:
                failures[check.name] = error.entry(check, details or check.public_result, authorised)
                _LOG.warning("Health check %s failed", check.name, exc_info=error.__cause__)
        _record_results(successes, failures)
        return {"successes": successes, "failures": failures}

    def _view(self, request: Any) -> Any:
        from pyramid.httpexceptions import HTTPBadRequest

        try:
            max_level = int(request.params.get("max_level", "1"))
        except ValueError:
            msg = f"Invalid max_level, an integer is expected: {request.params.get('max_level')!r}"
            raise HTTPBadRequest(msg) from None
        checks = request.params.get("checks", "")
        only = frozenset(name.strip() for name in checks.split(",") if name.strip()) or None
        report = self._run(request, max_level, only)
        # The outcome is the HTTP status only: the legacy report has no top-level key for it.
        request.response.status_code = 500 if report["failures"] else 200
        if _wants_health_json(request):
            return _health_json_response(request, report)
        return _json_response(request, report)


def _record_results(successes: dict[str, Any], failures: dict[str, Any]) -> None:
    """Set ``<prefix>health_check_failure{name}`` (when prometheus_client is installed)."""
    with never_raise("recording the health check metrics"):
        try:
            from c2cwsgiutils import _metrics

            gauge = _metrics.get().health_check_failure
        except ImportError:
            return
        for name in successes:
            gauge.labels(name=name).set(0)
        for name in failures:
            gauge.labels(name=name).set(1)


def _configured_redis(settings: Any) -> str:
    """The sentinels or URL of the configured Redis, the name of its automatic check ("" when none).

    The name is public (report, metric label): a password in the URL is masked.
    """
    sentinels = _settings.lookup(settings, "C2C_REDIS_SENTINELS", "c2c.redis_sentinels", "")
    if sentinels:
        return str(sentinels)
    url = str(_settings.lookup(settings, "C2C_REDIS_URL", "c2c.redis_url", ""))
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not (separator and at and ":" in credentials):
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


class _CheckFailedError(Exception):
    def __init__(self, timing: float, error: BaseException) -> None:
        super().__init__(str(error))
        self.timing = timing
        self.error = error
        self.stack = "".join(traceback.format_exception(error))

    def entry(self, check: _Check, details: bool, stacktrace: bool) -> dict[str, Any]:
        summary = check.public_message
        message = str(self.error) if details or summary is None else summary(self.error)
        entry: dict[str, Any] = {"message": message, "timing": self.timing, "level": check.level}
        if details and isinstance(self.error, JsonCheckException):
            entry["result"] = self.error.json
        if stacktrace:
            entry["stacktrace"] = self.stack
        return entry


def _timed(check: _Check, request: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    try:
        result = check.run(request)
    except Exception as error:
        raise _CheckFailedError(time.perf_counter() - start, error) from error
    return time.perf_counter() - start, result


def _is_auth(request: Any) -> bool:
    try:
        from c2cwsgiutils import auth
    except ImportError:  # pragma: no cover - auth is part of the package
        return False
    return bool(auth.is_auth(request))


def _wants_health_json(request: Any) -> bool:
    """The IETF format only when the client names it (``*/*`` keeps the legacy format)."""
    if _HEALTH_JSON not in (request.headers.get("Accept") or ""):
        return False
    return any(offer == _HEALTH_JSON for offer, _ in request.accept.acceptable_offers([_HEALTH_JSON]))


def _json_response(request: Any, report: dict[str, Any]) -> Any:
    response = request.response
    response.content_type = "application/json"
    response.charset = None
    response.body = _dumps(report)
    return response


def _health_json_response(request: Any, report: dict[str, Any]) -> Any:
    checks: dict[str, list[dict[str, Any]]] = {}
    for name, entry in report["successes"].items():
        checks[name] = [
            {
                "status": "pass",
                "observedValue": entry.get("result"),
                "observedUnit": "s",
                "time": entry["timing"],
            }
        ]
    for name, entry in report["failures"].items():
        checks[name] = [{"status": "fail", "output": entry["message"], "time": entry["timing"]}]
    body: dict[str, Any] = {"status": "fail" if report["failures"] else "pass", "checks": checks}
    from c2cwsgiutils import version

    release = version.get_version(request.registry)
    if release:
        body["releaseId"] = release
    response = request.response
    response.content_type = _HEALTH_JSON
    response.charset = None
    response.body = _dumps(body)
    return response


def _dumps(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value, default=str)
