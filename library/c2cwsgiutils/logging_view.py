"""Runtime log levels: ``GET {base}/logging/level`` (route ``c2c_logging_level``).

Enabled by ``C2C_LOG_VIEW_ENABLED`` / ``c2c.log_view_enabled``; secret-protected, JSON, no-cache.

- ``?name=N``: ``{"status": 200, "name", "level", "effective_level"}`` of the logger ``N``.
- ``?name=N&level=L``: sets the level in every process (broadcast), stores it in Redis (key
  ``c2c_logging_level_<N>``) so that processes started later apply it too, and answers as above.
  An unknown level is a 400 and nothing is changed nor stored (the reference implementation
  stored it). Beyond the reference: ``&ttl=S`` makes the override temporary: the Redis key
  expires after ``S`` seconds and each process restores the logger's previous level with a
  timer (processes started later get the remaining time from the key's TTL).
- no ``name``: ``{"status": 200, "overrides": {name: level}}`` read from Redis (without Redis:
  the overrides set through this process).

The overrides are bounded (each one is a Redis key, a logger in every process, re-applied at
every start): beyond ``C2C_LOG_VIEW_MAX_OVERRIDES`` (200) stored overrides, setting the level of
a new name is a 400 and nothing is changed nor stored; changing a stored name is always allowed.
The count is read before storing, so simultaneous requests may each take the last place. At
start-up, at most that many stored overrides are applied.

Every change is logged (CRITICAL, as in the reference) with who asked it.

.. versionadded:: 6.0
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from c2cwsgiutils import _admin, _audit, _process_state, _settings, auth, broadcast, redis_utils

__all__ = ["LoggingViewSettings", "includeme"]

_LOG = logging.getLogger(__name__)
_CHANNEL = "c2c_logging_level"
_REDIS_PREFIX = "c2c_logging_level_"
_MAX_TTL = 366 * 24 * 3600


@_settings.frozen_dataclass
class LoggingViewSettings:
    """Settings of the logging view."""

    enabled: bool = _settings.knob(
        False,
        env="C2C_LOG_VIEW_ENABLED",
        ini="c2c.log_view_enabled",
        convert=_settings.as_bool,
        doc="Enable the view that reads and changes the log levels at runtime.",
    )
    max_overrides: int = _settings.knob(
        200,
        env="C2C_LOG_VIEW_MAX_OVERRIDES",
        ini="c2c.log_view_max_overrides",
        convert=int,
        doc="Most log level overrides stored; setting a new name beyond is refused (400).",
    )


class _Override:
    """A level set through the view."""

    def __init__(self, previous: int, level: str, deadline: float | None) -> None:
        self.previous = previous
        self.level = level
        self.deadline = deadline  # time.monotonic() at which it reverts
        self.timer: threading.Timer | None = None


class _Overrides:
    """The overrides applied in this process, with their revert timers (re-armed after a fork)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, _Override] = {}

    def apply(self, name: str, level: str, ttl: float | None) -> None:
        logger = logging.getLogger(name)
        with self.lock:
            old = self.items.pop(name, None)
            if old is not None and old.timer is not None:
                old.timer.cancel()
            previous = old.previous if old is not None else logger.level
            logger.setLevel(level)
            override = _Override(previous, level, None if ttl is None else time.monotonic() + ttl)
            self.items[name] = override
            self._arm(name, override)

    def _arm(self, name: str, override: _Override) -> None:
        if override.deadline is None:
            return
        delay = max(0.0, override.deadline - time.monotonic())
        override.timer = threading.Timer(delay, self.revert, args=(name, override))
        override.timer.daemon = True
        override.timer.name = f"c2c_logging_level_revert_{name}"
        override.timer.start()

    def revert(self, name: str, override: _Override) -> None:
        with self.lock:
            if self.items.get(name) is not override:
                return
            del self.items[name]
            logging.getLogger(name).setLevel(override.previous)
        _LOG.warning(
            "Logging of %s reverted from %s to %s (override expired)",
            name,
            override.level,
            logging.getLevelName(override.previous),
        )

    def levels(self) -> dict[str, str]:
        with self.lock:
            return {name: item.level for name, item in self.items.items()}

    def after_fork(self) -> None:
        self.lock = threading.Lock()
        for name, override in self.items.items():
            self._arm(name, override)


_OVERRIDES = _Overrides()


@_process_state.on_reset
def _forget_overrides() -> None:
    # The levels themselves are the logging module's state; only the timers and records go.
    with _OVERRIDES.lock:
        for override in _OVERRIDES.items.values():
            if override.timer is not None:
                override.timer.cancel()
        _OVERRIDES.items.clear()


os.register_at_fork(after_in_child=_OVERRIDES.after_fork)


def _level_name(level: object) -> str | None:
    name = str(level).strip().upper()
    return name if isinstance(logging.getLevelNamesMapping().get(name), int) else None


def _set_level(name: str, level: str, ttl: float | None = None) -> dict[str, Any]:
    """Broadcast receiver: apply one override in this process."""
    valid = _level_name(level)
    if valid is None:
        raise ValueError(f"Invalid log level: {level!r}")
    _OVERRIDES.apply(name, valid, ttl)
    return {"status": 200}


def _describe(name: str) -> dict[str, Any]:
    logger = logging.getLogger(name)
    return {
        "status": 200,
        "name": name,
        "level": logging.getLevelName(logger.level),
        "effective_level": logging.getLevelName(logger.getEffectiveLevel()),
    }


def _parse_ttl(request: Any) -> float | None:
    raw = request.params.get("ttl")
    if raw in (None, ""):
        return None
    try:
        ttl = float(raw)
    except ValueError:
        raise _admin.bad_request(f"Invalid ttl: {raw!r} (seconds expected)") from None
    if not 0 < ttl <= _MAX_TTL:
        raise _admin.bad_request(f"Invalid ttl: {raw!r} (between 0 and {_MAX_TTL} seconds)")
    return ttl


def _store(settings: Any, name: str, level: str, ttl: float | None) -> None:
    import redis

    master, _slave, _sentinel = redis_utils.get(settings)
    if master is None:
        return
    try:
        master.set(_REDIS_PREFIX + name, level, px=None if ttl is None else max(1, int(ttl * 1000)))
        redis_utils.outage.succeeded()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        redis_utils.outage.failed("storing the log level", error)


def _stored_names(settings: Any) -> set[str]:
    """The names of the stored overrides (Redis's master, else the ones of this process)."""
    import redis

    master, _slave, _sentinel = redis_utils.get(settings)
    if master is None:
        return set(_OVERRIDES.levels())
    try:
        names = {key[len(_REDIS_PREFIX) :] for key in master.scan_iter(match=_REDIS_PREFIX + "*", count=100)}
        redis_utils.outage.succeeded()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        redis_utils.outage.failed("reading the log levels", error)
        return set(_OVERRIDES.levels())
    return names


def _check_room(request: Any, name: str, level: str) -> None:
    """Refuse a new name when the stored overrides are at the maximum; a stored one may change."""
    limit = _settings.get(request.registry, LoggingViewSettings).max_overrides
    names = _stored_names(request.registry.settings)
    if name in names or len(names) < limit:
        return
    _audit.log(request, f"set the log level of {name!r} to {level}", "refused: too many overrides")
    raise _admin.bad_request(
        f"Too many log level overrides: {len(names)} are stored, the maximum is {limit} "
        "(C2C_LOG_VIEW_MAX_OVERRIDES). Change one of the stored names, or let overrides set "
        f"with ttl expire, or delete Redis keys {_REDIS_PREFIX}<name>."
    )


def _list_overrides(settings: Any) -> dict[str, str]:
    import redis

    _master, slave, _sentinel = redis_utils.get(settings)
    if slave is None:
        return _OVERRIDES.levels()
    try:
        overrides = {}
        for key in slave.scan_iter(match=_REDIS_PREFIX + "*", count=100):
            value = slave.get(key)
            if value is not None:
                overrides[key[len(_REDIS_PREFIX) :]] = value
        redis_utils.outage.succeeded()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        redis_utils.outage.failed("reading the log levels", error)
        return _OVERRIDES.levels()
    return overrides


def _logging_view(request: Any) -> dict[str, Any]:
    auth.auth_view(request)
    name = request.params.get("name")
    if name is None:
        return {"status": 200, "overrides": _list_overrides(request.registry.settings)}
    level = request.params.get("level")
    if level is None:
        return _describe(name)
    valid = _level_name(level)
    if valid is None:
        _audit.log(request, f"set the log level of {name!r} to {level!r}", "refused: invalid level")
        raise _admin.bad_request(f"Invalid log level: {level!r}")
    ttl = _parse_ttl(request)
    _check_room(request, name, valid)
    before = _describe(name)["level"]
    _LOG.critical(
        "Logging of %s changed from %s to %s%s (by %s)",
        name,
        before,
        valid,
        "" if ttl is None else f" for {ttl:g} s",
        _audit.who(request),
    )
    broadcast.broadcast(_CHANNEL, params={"name": name, "level": valid, "ttl": ttl}, expect_answers=True)
    _store(request.registry.settings, name, valid, ttl)
    _audit.log(request, f"set the log level of {name!r} to {valid}", "done")
    return _describe(name)


def _restore_overrides(settings: Any, limit: int) -> None:
    import redis

    master, _slave, _sentinel = redis_utils.get(settings)
    if master is None:
        return
    try:
        for index, key in enumerate(master.scan_iter(match=_REDIS_PREFIX + "*", count=100)):
            if index >= limit:
                _LOG.warning(
                    "More than %d log level overrides are stored in Redis: only %d applied "
                    "(C2C_LOG_VIEW_MAX_OVERRIDES)",
                    limit,
                    limit,
                )
                break
            level, ttl_ms = master.get(key), master.pttl(key)
            name = key[len(_REDIS_PREFIX) :]
            if level is None or _level_name(level) is None:
                _LOG.warning("Ignoring the invalid log level %r stored for %s", level, name)
                continue
            ttl = ttl_ms / 1000 if ttl_ms is not None and ttl_ms > 0 else None
            _LOG.info("Applying the log level %s of %s stored in Redis", level, name)
            _set_level(name, level, ttl)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        redis_utils.outage.failed("restoring the log levels", error)
    except Exception:
        _LOG.warning("Could not restore the log levels stored in Redis", exc_info=True)


def includeme(config: Any) -> None:
    """Register the view when ``C2C_LOG_VIEW_ENABLED`` is true, and re-apply the stored overrides."""
    settings = _settings.get(config.registry, LoggingViewSettings)
    if not settings.enabled:
        return
    _admin.add_admin_view(
        config, "c2c_logging_level", "/logging/level", _logging_view, channel=_CHANNEL, receiver=_set_level
    )
    _restore_overrides(config.get_settings(), settings.max_overrides)
