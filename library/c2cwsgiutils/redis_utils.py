"""The Redis connection of the process: URL or Sentinel mode, master and replica clients.

Knobs (environment variable, else ini key; see the README's settings table):
``C2C_REDIS_URL``, ``C2C_REDIS_SENTINELS`` (``host:port,host:port``, wins over the URL),
``C2C_REDIS_SERVICENAME``, ``C2C_REDIS_DB`` (Sentinel mode), ``C2C_REDIS_OPTIONS`` (``k=v,k=v``,
each value read as a YAML scalar and given to the clients), ``C2C_REDIS_PUBSUB_RETRY_DELAY`` and
``C2C_REDIS_PUBSUB_GET_MESSAGE_TIMEOUT``.

Unlike the reference implementation, the clients are created once per process under a lock (the
"not configured" answer is cached too, and logged once), and a forked child (a gunicorn worker of
a ``--preload`` master) never reuses the connections or threads of its parent: they are dropped,
without closing the parent's sockets, right after ``fork()``; the next :func:`get` creates new
ones. The clients have a 5 seconds connect timeout unless ``C2C_REDIS_OPTIONS`` says otherwise.

.. versionadded:: 6.0
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from c2cwsgiutils import _extras, _process_state, _settings

__all__ = ["PubSubWorkerThread", "RedisSettings", "cleanup", "get", "outage", "settings_of"]

_LOG = logging.getLogger(__name__)


def _parse_options(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    import yaml  # only C2C_REDIS_OPTIONS needs it: not imported at start-up without them

    options: dict[str, Any] = {}
    for item in _settings.as_list(value):
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected name=value, got {item!r}")
        options[name.strip()] = yaml.safe_load(raw.strip()) if raw.strip() else ""
    return options


@_settings.frozen_dataclass
class RedisSettings:
    """Settings of the Redis connection."""

    url: str = _settings.knob("", env="C2C_REDIS_URL", ini="c2c.redis_url", doc="URL of the Redis server.")
    sentinels: tuple[str, ...] = _settings.knob(
        (),
        env="C2C_REDIS_SENTINELS",
        ini="c2c.redis_sentinels",
        convert=_settings.as_list,
        doc="Redis Sentinels (`host:port,host:port`); wins over the URL.",
    )
    servicename: str = _settings.knob(
        "", env="C2C_REDIS_SERVICENAME", ini="c2c.redis_servicename", doc="Service name in Sentinel mode."
    )
    db: int | None = _settings.knob(
        None, env="C2C_REDIS_DB", ini="c2c.redis_db", convert=int, doc="Database number in Sentinel mode."
    )
    options: Mapping[str, Any] | None = _settings.knob(
        None,
        env="C2C_REDIS_OPTIONS",
        ini="c2c.redis_options",
        convert=_parse_options,
        doc="Options of the Redis clients (`name=value,name=value`, values are YAML scalars).",
    )
    pubsub_retry_delay: float = _settings.knob(
        0.5,
        env="C2C_REDIS_PUBSUB_RETRY_DELAY",
        ini="c2c.redis_pubsub_retry_delay",
        convert=float,
        doc="Seconds between two attempts of the pub/sub listener while Redis is unreachable.",
    )
    pubsub_get_message_timeout: float = _settings.knob(
        1.0,
        env="C2C_REDIS_PUBSUB_GET_MESSAGE_TIMEOUT",
        ini="c2c.redis_pubsub_get_message_timeout",
        convert=float,
        doc="Seconds the pub/sub listener waits for a message in one call.",
    )

    @property
    def configured(self) -> bool:
        """Whether a Redis server is configured (URL or Sentinels)."""
        return bool(self.sentinels or self.url)


class _Outage:
    """One warning when Redis becomes unreachable (not one per call), one line when it is back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down = False

    @property
    def down(self) -> bool:
        return self._down

    def failed(self, what: str, error: BaseException) -> None:
        with self._lock:
            if self._down:
                _LOG.debug("Redis still unreachable (%s): %s", what, error)
                return
            self._down = True
        _LOG.warning("Redis connection problem (%s): %s; working locally until it is back", what, error)

    def succeeded(self) -> None:
        with self._lock:
            if not self._down:
                return
            self._down = False
        _LOG.info("Redis is back")

    def reset(self) -> None:
        with self._lock:
            self._down = False


#: The process-wide Redis availability, shared by the broadcaster, its listener and the views.
outage = _Outage()


class _State:
    """The Redis clients of the process."""

    __slots__ = ("clients", "lock", "pid", "resolved", "settings")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.resolved = False
        self.settings: RedisSettings | None = None
        self.clients: tuple[Any, Any, Any] = (None, None, None)


_STATE = _State()


def _create(conf: RedisSettings) -> tuple[Any, Any, Any]:
    redis = _extras.require("redis", "broadcast", "c2cwsgiutils.redis_utils")
    options: dict[str, Any] = {"socket_connect_timeout": 5, **(conf.options or {})}
    options["decode_responses"] = True
    if conf.sentinels:
        import redis.sentinel

        hosts = []
        for host_port in conf.sentinels:
            host, _, port = host_port.rpartition(":")
            hosts.append((host, int(port)))
        if conf.db is not None:
            options["db"] = conf.db
        sentinel = redis.sentinel.Sentinel(
            hosts, sentinel_kwargs={"socket_connect_timeout": options["socket_connect_timeout"]}, **options
        )
        _LOG.info("Redis setup using: %s, %s", ",".join(conf.sentinels), conf.servicename)
        return (
            sentinel.master_for(conf.servicename),
            sentinel.slave_for(conf.servicename),
            sentinel,
        )
    _LOG.info("Redis setup using: %s", _redact_url(conf.url))
    client = redis.Redis.from_url(conf.url, **options)
    return client, client, None


def _redact_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def settings_of(settings: Mapping[str, Any] | None = None) -> RedisSettings:
    """Return the Redis settings resolved for this process (resolved on the first call).

    Args:
        settings: the Pyramid settings; only used by the first call of the process.
    """
    get(settings)
    assert _STATE.settings is not None
    return _STATE.settings


def get(settings: Mapping[str, Any] | None = None) -> tuple[Any, Any, Any]:
    """Return the ``(master, replica, sentinel)`` clients of this process.

    The knobs are resolved and the clients created on the first call of the process (and again
    after :func:`cleanup` or in a forked child); later ``settings`` are ignored. In URL mode the
    same client is both master and replica and the sentinel is ``None``; without configuration
    all three are ``None``.

    Args:
        settings: the Pyramid settings (ini keys ``c2c.redis_*``).

    Returns:
        ``(master, slave, sentinel)``, all ``redis-py`` clients with ``decode_responses=True``.
    """
    state = _STATE
    if state.resolved and state.pid == os.getpid():
        return state.clients
    with state.lock:
        if state.resolved and state.pid == os.getpid():
            return state.clients
        conf = _settings.resolve(RedisSettings, settings)
        if conf.configured:
            clients = _create(conf)
        else:
            _LOG.info("No Redis configuration found")
            clients = (None, None, None)
        state.settings, state.clients, state.pid = conf, clients, os.getpid()
        state.resolved = True
        return clients


@_process_state.on_reset
def cleanup() -> None:
    """Close the clients of this process and forget the configuration (the next :func:`get` starts over)."""
    with _STATE.lock:
        master, slave, _sentinel = _STATE.clients
        if _STATE.pid == os.getpid():
            for client in {id(c): c for c in (master, slave) if c is not None}.values():
                client.close()
        _STATE.clients, _STATE.settings, _STATE.resolved = (None, None, None), None, False
    outage.reset()


def _after_fork_in_child() -> None:
    # The parent's connections and lock are not ours: drop them without closing the sockets
    # (closing could shut down the parent's connection), and start over on the next get().
    _STATE.lock = threading.Lock()
    _STATE.clients, _STATE.resolved = (None, None, None), False
    outage.reset()


os.register_at_fork(after_in_child=_after_fork_in_child)


class PubSubWorkerThread(threading.Thread):
    """A daemon thread that reads the messages of a pub/sub connection (handlers do the work).

    While Redis is unreachable it retries every ``retry_delay`` seconds; the outage is logged
    once (``Redis connection problem``) and the recovery once (``Redis is back``); redis-py
    re-subscribes the channels on reconnection and ``on_recover`` (if given) is then called, for
    example to subscribe the channels whose subscription failed during the outage.

    Args:
        pubsub: a ``redis.client.PubSub``.
        name: the thread name.
        retry_delay: seconds between attempts while Redis is unreachable (default
            ``C2C_REDIS_PUBSUB_RETRY_DELAY``).
        get_message_timeout: seconds one read waits for a message (default
            ``C2C_REDIS_PUBSUB_GET_MESSAGE_TIMEOUT``).
        on_recover: called (in this thread) when the connection works again, and while nothing
            is subscribed.
    """

    def __init__(
        self,
        pubsub: Any,
        name: str | None = None,
        *,
        retry_delay: float | None = None,
        get_message_timeout: float | None = None,
        on_recover: Callable[[], None] | None = None,
    ) -> None:
        """Create the thread (not started)."""
        super().__init__(name=name, daemon=True)
        conf = _STATE.settings or RedisSettings()
        self.pubsub = pubsub
        self.retry_delay = conf.pubsub_retry_delay if retry_delay is None else retry_delay
        self.get_message_timeout = (
            conf.pubsub_get_message_timeout if get_message_timeout is None else get_message_timeout
        )
        self._on_recover = on_recover
        self._stopping = threading.Event()

    def _step(self, failing: bool) -> bool:
        """Read one message; return whether Redis is still failing."""
        if not self.pubsub.subscribed:
            if self._on_recover is not None:
                self._on_recover()
            if not self.pubsub.subscribed:
                self._stopping.wait(self.get_message_timeout)
                return failing
        self.pubsub.get_message(ignore_subscribe_messages=True, timeout=self.get_message_timeout)
        if failing:
            outage.succeeded()
            if self._on_recover is not None:
                self._on_recover()
        return False

    def run(self) -> None:
        """Read messages until :meth:`stop` is called."""
        import redis

        failing = False
        while not self._stopping.is_set():
            try:
                failing = self._step(failing)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                if not self._stopping.is_set():
                    failing = True
                    outage.failed("pub/sub listener", error)
                    self._stopping.wait(self.retry_delay)
            except Exception:
                if not self._stopping.is_set():
                    _LOG.exception("Unexpected error in the Redis pub/sub listener %s", self.name)
                    self._stopping.wait(self.retry_delay)

    def stop(self) -> None:
        """Unsubscribe from everything, stop the loop and wait (up to 5 s) for the thread to end."""
        self._stopping.set()
        try:
            self.pubsub.unsubscribe()
            self.pubsub.punsubscribe()
        except Exception as error:
            _LOG.debug("Unsubscribing the pub/sub listener failed: %s", error)
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)
        try:
            self.pubsub.close()
        except Exception as error:
            _LOG.debug("Closing the pub/sub connection failed: %s", error)
