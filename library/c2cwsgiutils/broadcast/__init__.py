"""Broadcast: run a function in every process of the service (every gunicorn worker of every pod).

With Redis configured (:mod:`c2cwsgiutils.redis_utils`: ``C2C_REDIS_URL`` or the Sentinels) the
messages go through the Redis channels ``<C2C_BROADCAST_PREFIX><channel>`` (default prefix
``broadcast_api_``); without it, only the current process is reached.

Security: with ``C2C_BROADCAST_SECRET`` / ``c2c.broadcast_secret``, or else ``C2C_SECRET``, the
messages are signed with HMAC-SHA256 and a key derived from the secret, bound to their channel
and valid 5 minutes; the unsigned ones are dropped, so a client with access to Redis alone
cannot change the log levels nor pull memory dumps. Without a secret the messages are the
reference's unsigned JSON (``{"params": {...}, "answer_channel": ...}``), so that a fleet mixing
this library and the reference interoperates: anyone who can publish on the Redis can then run
the broadcast callbacks, and one warning at start-up says how to sign. A process without a
secret drops the signed messages (it cannot verify them), with a warning at most once a minute:
every process of a service needs the same secret, or none.

Order: in each process the callbacks run one at a time, in the order the messages were received
(see :mod:`c2cwsgiutils.broadcast.redis`, also for a broadcast sent from a callback).

Robustness: Redis being down never fails the startup nor a broadcast: the broadcast runs in this
process only, one warning is logged for the outage, and the listener reconnects by itself. The
broadcaster is process-global, thread-safe and fork-safe: a forked child (gunicorn ``--preload``)
gets its own connection and threads, with the same subscriptions.

.. versionadded:: 6.0
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from c2cwsgiutils import _process_state, _settings, redis_utils
from c2cwsgiutils.broadcast import interface, local

__all__ = [
    "BroadcastSettings",
    "broadcast",
    "cleanup",
    "decorator",
    "get_broadcaster",
    "includeme",
    "init",
    "subscribe",
    "unsubscribe",
]

_LOG = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


@_settings.frozen_dataclass
class BroadcastSettings:
    """Settings of the broadcast."""

    prefix: str = _settings.knob(
        "broadcast_api_",
        env="C2C_BROADCAST_PREFIX",
        ini="c2c.broadcast_prefix",
        doc="Prefix of the Redis channels of the broadcasts (one per service sharing a Redis).",
    )
    secret: str = _settings.knob(
        "",
        env="C2C_BROADCAST_SECRET",
        ini="c2c.broadcast_secret",
        doc="Key of the signatures of the broadcast messages (default: derived from `C2C_SECRET`).",
    )


class _State:
    """The broadcaster of the process."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.broadcaster: interface.BaseBroadcaster | None = None
        # What a forked child needs to build its own Redis broadcaster.
        self.settings: Mapping[str, Any] | None = None
        self.prefix = ""
        self.secret = ""
        # The warning about unsigned messages is logged once per process, however many
        # applications include the broadcast.
        self.warned_unsigned = False


_STATE = _State()


def _key(config: Any) -> tuple[str, str]:
    if config is None:
        conf = _settings.resolve(BroadcastSettings, None)
        core = _settings.resolve(_settings.CoreSettings, None)
    else:
        conf = _settings.get(config.registry, BroadcastSettings)
        core = _settings.get(config.registry, _settings.CoreSettings)
    return conf.prefix, conf.secret or core.secret


def includeme(config: Any = None) -> None:
    """Set up the broadcaster of the process: through Redis when it is configured, else local.

    Without a secret (``C2C_BROADCAST_SECRET`` or ``C2C_SECRET``) the messages through Redis are
    unsigned, and a warning says so once per process. Subscriptions made before (for example by
    :func:`decorator` at import time) are kept. Never fails because Redis is down.

    Args:
        config: the Pyramid configurator (``None`` in a process without Pyramid).
    """
    settings = config.get_settings() if config is not None else None
    master, slave, _sentinel = redis_utils.get(settings)
    prefix, secret = _key(config)
    with _STATE.lock:
        current = _STATE.broadcaster
        if master is None:
            if current is None:
                _STATE.broadcaster = local.LocalBroadcaster()
            return
        from c2cwsgiutils.broadcast.redis import RedisBroadcaster

        if (
            isinstance(current, RedisBroadcaster)
            and current.pid == os.getpid()
            and (current.prefix, _STATE.secret) == (prefix, secret)
        ):
            return
        subscribers = current.get_subscribers() if current is not None else {}
        if isinstance(current, local.LocalBroadcaster) and subscribers:
            _LOG.info("Switching from a local broadcaster to a Redis broadcaster")
        if not secret and not _STATE.warned_unsigned:
            _STATE.warned_unsigned = True
            _LOG.warning(
                "Broadcast messages go through Redis unsigned: anyone who can publish on it can run "
                "the broadcast callbacks; set C2C_BROADCAST_SECRET or C2C_SECRET (the same in every "
                "process of the service) to sign them"
            )
        new = RedisBroadcaster(prefix, master, slave, secret=secret, subscribers=subscribers)
        _STATE.broadcaster, _STATE.settings, _STATE.prefix, _STATE.secret = new, settings, prefix, secret
    if current is not None:
        current.close()


def init(config: Any = None) -> None:
    """Deprecated alias of :func:`includeme`."""
    _LOG.warning("c2cwsgiutils.broadcast.init is deprecated, use config.include('c2cwsgiutils.broadcast')")
    includeme(config)


def get_broadcaster() -> interface.BaseBroadcaster:
    """Return the broadcaster of this process (a local one, with an error logged, before setup)."""
    broadcaster = _STATE.broadcaster
    if broadcaster is not None:
        return broadcaster
    with _STATE.lock:
        if _STATE.broadcaster is None:
            _LOG.info("Broadcast used before its setup: using a local broadcaster for now")
            _STATE.broadcaster = local.LocalBroadcaster()
        return _STATE.broadcaster


def subscribe(channel: str, callback: Callable[..., Any]) -> None:
    """Call ``callback(**params)`` in this process for each broadcast on ``channel``.

    The return value of the callback is the answer of this process; it must be JSON-able.
    """
    get_broadcaster().subscribe(channel, callback)


def unsubscribe(channel: str) -> None:
    """Stop receiving the broadcasts on ``channel`` in this process."""
    get_broadcaster().unsubscribe(channel)


def broadcast(
    channel: str, params: Mapping[str, Any] | None = None, expect_answers: bool = False, timeout: float = 10
) -> list[Any] | None:
    """Call the subscribers of ``channel`` in every process with ``params`` as keyword arguments.

    Args:
        channel: the channel name.
        params: the keyword arguments (JSON-able).
        expect_answers: wait for the answers.
        timeout: the maximum time to wait for the answers, in seconds.

    Returns:
        With ``expect_answers``, the answers (dicts get ``hostname`` and ``pid``; a receiver that
        failed answers ``{"status": 500, "message": ...}``; ``None`` for a process that did not
        answer in time); else ``None``.
    """
    return get_broadcaster().broadcast(channel, params or {}, expect_answers, timeout)


def decorator(
    channel: str | None = None, expect_answers: bool = False, timeout: float = 10
) -> Callable[[F], F]:
    """Turn a function into one that runs in every process (called with keyword arguments only).

    The function is subscribed when it is decorated, on ``channel`` (default
    ``c2c_decorated_<module>.<name>``); calling the wrapper broadcasts and returns the answers
    (or ``None`` without ``expect_answers``).
    """

    def wrap(func: F) -> F:
        name = channel or f"c2c_decorated_{func.__module__}.{func.__name__}"
        subscribe(name, func)

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            return broadcast(name, params=kwargs, expect_answers=expect_answers, timeout=timeout)

        return cast("F", wrapper)

    return wrap


@_process_state.on_reset
def cleanup() -> None:
    """Stop the broadcaster of this process (its threads and connection) and forget its subscriptions.

    The next :func:`includeme` starts afresh, warning again about unsigned messages.
    """
    with _STATE.lock:
        current, _STATE.broadcaster = _STATE.broadcaster, None
        _STATE.warned_unsigned = False
    if current is not None:
        current.close()


def _after_fork_in_child() -> None:
    _STATE.lock = threading.RLock()
    current = _STATE.broadcaster
    if current is None or isinstance(current, local.LocalBroadcaster):
        return
    from c2cwsgiutils.broadcast.redis import RedisBroadcaster

    try:
        # redis_utils dropped the parent's connections: this builds new ones. Subscribing now
        # (not later in the listener thread) so that no broadcast sent after the fork is missed.
        master, slave, _sentinel = redis_utils.get(_STATE.settings)
        _STATE.broadcaster = RedisBroadcaster(
            _STATE.prefix,
            master,
            slave,
            secret=_STATE.secret,
            subscribers=current.get_subscribers(),
        )
    except Exception:
        _LOG.exception("Could not set up the broadcaster of the forked process; it stays local")
        _STATE.broadcaster = local.LocalBroadcaster(current.get_subscribers())


os.register_at_fork(after_in_child=_after_fork_in_child)
