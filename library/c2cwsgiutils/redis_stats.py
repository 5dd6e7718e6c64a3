"""Timing of the Redis commands: ``<prefix>redis_seconds{command}`` (a wall-clock histogram).

``includeme`` wraps ``redis.client.Redis.execute_command`` when ``C2C_TRACK_REDIS`` /
``c2c.track_redis`` is true (the default), as c2cwsgiutils 6 documents: every client of the
process is timed, also the ones the application makes itself. redis has no public hook for that,
so this is one of the library's two wraps of another package's public method (the other one is
``requests``', see :mod:`c2cwsgiutils.request_tracking`): its signature is checked first (the
command must come first, positionally; a release that changed that gets no wrapper and a
warning), and it is installed once
``redis`` is imported (:mod:`c2cwsgiutils._post_import`, no import hook). The wrapper is
installed once per process: including the module again (another application, a test) never
wraps it twice. The command label keeps at
most ``C2C_PROMETHEUS_MAX_LABEL_VALUES`` distinct values.

.. versionadded:: 6.0
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from c2cwsgiutils import _metrics, _post_import, _process_state, _settings
from c2cwsgiutils._safety import never_raise

__all__ = ["RedisStatsSettings", "includeme", "install", "uninstall"]

_LOG = logging.getLogger(__name__)
_LOCK = threading.Lock()
_MARK = "_c2cwsgiutils_original"


@_settings.frozen_dataclass
class RedisStatsSettings:
    """Settings of the Redis statistics."""

    track_redis: bool = _settings.knob(
        True,
        env="C2C_TRACK_REDIS",
        ini="c2c.track_redis",
        convert=_settings.as_bool,
        doc="Time the Redis commands (`redis_seconds` metric).",
    )


def _command_name(args: tuple[Any, ...]) -> str:
    if not args:
        return ""
    name = args[0]
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return str(name).upper()


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, *args, **options)
        finally:
            duration = time.perf_counter() - start
            with never_raise("timing a Redis command"):
                metrics = _metrics.get()
                metrics.redis_seconds.labels(command=metrics.redis_commands(_command_name(args))).observe(
                    duration
                )

    setattr(execute_command, _MARK, original)
    execute_command.__wrapped__ = original  # type: ignore[attr-defined]  # as functools.wraps does
    execute_command.__doc__ = original.__doc__
    return execute_command


def _takes_the_command_first(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes the command positionally first: ``(self, *args, **options)``.

    The wrapper passes every argument through unchanged and only reads the first one as the
    command's name (a label). Another integration may have wrapped the method already (Sentry's
    is ``(self, name, *args, **kwargs)``): that is as good.
    """
    try:
        parameters = list(inspect.signature(function).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    if not parameters:
        return False
    first = parameters[0].kind
    if first is inspect.Parameter.VAR_POSITIONAL:
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return first in positional and any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)


def _patch(client: ModuleType) -> None:
    with _LOCK:
        current = client.Redis.execute_command
        if hasattr(current, _MARK):
            return
        if not _takes_the_command_first(current):
            _LOG.warning(
                "redis.client.Redis.execute_command has an unknown signature: Redis commands are not timed"
            )
            return
        client.Redis.execute_command = _wrap(current)  # a documented exception: see the module's docstring


def install() -> None:
    """Wrap ``redis.client.Redis.execute_command`` (once per process), when redis is (or gets) imported."""
    _post_import.when_imported("redis.client", _patch)


@_process_state.on_reset
def uninstall() -> None:
    """Restore the original ``execute_command`` (for tests)."""
    _post_import.cancel("redis.client", _patch)
    client = sys.modules.get("redis.client")
    if client is None:
        return
    with _LOCK:
        current = client.Redis.execute_command
        original = getattr(current, _MARK, None)
        if original is not None:
            client.Redis.execute_command = original


def includeme(config: Any = None) -> None:
    """Time the Redis commands when ``C2C_TRACK_REDIS`` is true (default)."""
    settings = config.registry.settings if config is not None else None
    conf = (
        _settings.get(config.registry, RedisStatsSettings)
        if config is not None
        else _settings.resolve(RedisStatsSettings, settings)
    )
    if not conf.track_redis:
        return
    # Without the redis package (extra ``broadcast``) the hook never runs: nothing to time.
    install()
    if config is not None:
        _post_import.subscribe(config)
