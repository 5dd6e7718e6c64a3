"""Database maintenance: ``GET {base}/db/maintenance`` (route ``c2c_db_maintenance``).

Enabled by ``C2C_DB_MAINTENANCE_VIEW_ENABLED`` / ``c2c.db_maintenance_view_enabled``;
secret-protected, JSON, no-cache.

- ``?readonly=true|false``: every process of the service (broadcast) routes all its sessions to
  the replica (``true``) or back to the normal routing (``false``); the state is stored in Redis
  (key ``c2c_db_maintenance_force_readonly``) so that processes started later apply it too.
  Answers ``{"status": 200, "readonly": bool}``. Any other value is a 400 and nothing changes.
- no parameter: ``{"status": 200, "current_readonly": true|false|null}``, read from Redis (``null``
  without Redis or when never set).

.. versionadded:: 6.0
"""

from __future__ import annotations

import logging
from typing import Any

from c2cwsgiutils import _admin, _audit, _settings, auth, broadcast, redis_utils

__all__ = ["DbMaintenanceSettings", "includeme"]

_LOG = logging.getLogger(__name__)
_CHANNEL = "c2c_db_maintenance"
_REDIS_KEY = "c2c_db_maintenance_force_readonly"


@_settings.frozen_dataclass
class DbMaintenanceSettings:
    """Settings of the database maintenance view."""

    enabled: bool = _settings.knob(
        False,
        env="C2C_DB_MAINTENANCE_VIEW_ENABLED",
        ini="c2c.db_maintenance_view_enabled",
        convert=_settings.as_bool,
        doc="Enable the view that switches every process to the read-only replica.",
    )


def _set_readonly(readonly: bool) -> dict[str, Any]:
    """Broadcast receiver: apply the maintenance mode in this process."""
    from c2cwsgiutils import db

    db.set_force_readonly(bool(readonly))
    return {"status": 200, "readonly": bool(readonly)}


def _redis_call(settings: Any, what: str, call: Any) -> Any:
    import redis

    master, _slave, _sentinel = redis_utils.get(settings)
    if master is None:
        return None
    try:
        result = call(master)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        redis_utils.outage.failed(what, error)
        return None
    redis_utils.outage.succeeded()
    return result


def _view(request: Any) -> dict[str, Any]:
    from pyramid.httpexceptions import HTTPBadRequest

    auth.auth_view(request)
    settings = request.registry.settings
    value = request.params.get("readonly")
    if value is None:
        stored = _redis_call(settings, "reading the maintenance mode", lambda client: client.get(_REDIS_KEY))
        return {"status": 200, "current_readonly": None if stored is None else stored == "true"}
    try:
        readonly = _admin.bool_param(request, "readonly")
    except HTTPBadRequest:
        _audit.log(request, f"set the database maintenance mode to {value!r}", "refused: invalid value")
        raise
    _LOG.critical("Database maintenance: readonly=%s (by %s)", readonly, _audit.who(request))
    broadcast.broadcast(_CHANNEL, params={"readonly": readonly}, expect_answers=True)
    _redis_call(
        settings,
        "storing the maintenance mode",
        lambda client: client.set(_REDIS_KEY, "true" if readonly else "false"),
    )
    _audit.log(request, f"set the database maintenance mode to readonly={readonly}", "done")
    return {"status": 200, "readonly": readonly}


def _restore(settings: Any) -> None:
    stored = _redis_call(settings, "restoring the maintenance mode", lambda client: client.get(_REDIS_KEY))
    if stored is not None:
        _LOG.info("Applying the database maintenance mode stored in Redis: readonly=%s", stored)
        _set_readonly(stored == "true")


def includeme(config: Any) -> None:
    """Register the view when enabled, and re-apply the maintenance mode stored in Redis."""
    if not _settings.get(config.registry, DbMaintenanceSettings).enabled:
        return
    _admin.add_admin_view(
        config, "c2c_db_maintenance", "/db/maintenance", _view, channel=_CHANNEL, receiver=_set_readonly
    )
    _restore(config.get_settings())
