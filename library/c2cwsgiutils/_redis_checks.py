"""The Redis and version health checks (wired by ``HealthCheck.add_redis_check``/``add_version_check``).

Unlike the reference implementation, the Redis check fails when Redis is down, keeps ``INFO``,
``DBSIZE`` and the Sentinel information in separate keys, and no check publishes a broadcast
when it succeeds; the version check waits for the answers of the processes only as long as they
take (at most ``timeout``).

The Redis check's result (``INFO``: server version, OS, paths, memory) is only for authorised
callers; :func:`public_message` is what anyone else reads of a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from c2cwsgiutils import broadcast, redis_utils, version

_LOG = logging.getLogger(__name__)
_VERSION_CHANNEL = "c2c_health_check_version"


class _NotConfiguredError(RuntimeError):
    """Redis is not configured (a message of ours, without internals)."""


def public_message(error: BaseException) -> str:
    """The failure message of these checks for anonymous callers.

    Ours as they are; the Redis client's reduced to their class (``ConnectionError``): they name
    the server's host and port.
    """
    from c2cwsgiutils.health_check import JsonCheckException

    if isinstance(error, _NotConfiguredError | JsonCheckException):
        return str(error)
    return type(error).__name__


def make_redis_check(settings: Any = None) -> Callable[[Any], dict[str, Any]]:
    """Build the check of the Redis connection.

    Args:
        settings: the Pyramid settings (used if Redis is not set up yet in the process).

    Returns:
        ``check(request)``: raises when Redis is not configured or does not answer; else returns
        ``{"info": <INFO of the master>, "dbsize": n}`` plus, in Sentinel mode,
        ``{"sentinel": {"masters": <SENTINEL MASTERS>}}``.
    """

    def check(request: Any) -> dict[str, Any]:
        del request
        master, _slave, sentinel = redis_utils.get(settings)
        if master is None:
            raise _NotConfiguredError("Redis is not configured")
        result: dict[str, Any] = {"info": master.info(), "dbsize": master.dbsize()}
        if sentinel is not None:
            result["sentinel"] = {"masters": sentinel.sentinels[0].sentinel_masters()}
        return result

    return check


def make_version_check(registry: Any, timeout: float = 2.0) -> Callable[[Any], dict[str, Any]]:
    """Build the check that every process of the service runs the same version.

    Subscribes this process to the version broadcast (call it when the application is built,
    in every process).

    Args:
        registry: the Pyramid registry (its versions.json gives this process's git hash).
        timeout: the maximum time to wait for the answers of the other processes, in seconds.

    Returns:
        ``check(request)``: returns ``{"version": <git hash>}`` when all the processes that
        answered agree; raises ``health_check.JsonCheckException`` with the versions seen
        otherwise.
    """
    own = version.get_version(registry)
    broadcast.subscribe(_VERSION_CHANNEL, lambda: {"version": own})

    def check(request: Any) -> dict[str, Any]:
        del request
        from c2cwsgiutils.health_check import JsonCheckException

        answers = broadcast.broadcast(_VERSION_CHANNEL, expect_answers=True, timeout=timeout) or []
        versions = sorted({str(a.get("version")) for a in answers if isinstance(a, dict)})
        if versions and versions != [str(own)]:
            raise JsonCheckException("Multiple versions", {"versions": versions, "expected": own})
        return {"version": own}

    return check
