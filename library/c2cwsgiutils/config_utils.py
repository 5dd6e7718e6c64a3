"""Helpers to read the library's configuration (environment variable first, then ini key)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from c2cwsgiutils import _settings

__all__ = ["config_bool", "env_or_config", "env_or_settings", "get_base_path"]


def config_bool(value: str | None) -> bool:
    """Return ``True`` for ``true``, ``t``, ``yes``, ``y``, ``on``, ``1`` (any case), ``False`` otherwise.

    As in c2cwsgiutils 6, any other word is false; the library's own settings refuse it instead
    (:func:`c2cwsgiutils._settings.as_bool`).
    """
    return _settings.is_true(value)


def env_or_settings(
    settings: Mapping[str, Any] | None,
    env_name: str | None = None,
    settings_name: str | None = None,
    default: Any = None,
    type_: Callable[[Any], Any] | None = None,
) -> Any:
    """Return the env var ``env_name`` if non-empty, else ``settings[settings_name]``, else ``default``.

    ``type_`` converts the environment or settings value; the default is returned as is.
    """
    return _settings.lookup(settings, env_name, settings_name, default, type_)


def env_or_config(
    config: Any,
    env_name: str | None = None,
    settings_name: str | None = None,
    default: Any = None,
    type_: Callable[[Any], Any] | None = None,
) -> Any:
    """Same as :func:`env_or_settings`, with the settings of a Pyramid configurator."""
    settings = config.get_settings() if config is not None else {}
    return _settings.lookup(settings, env_name, settings_name, default, type_)


def get_base_path(config: Any) -> str:
    """Return the base path of the library's views (``C2C_BASE_PATH``, default ``/c2c``)."""
    return _settings.get(config.registry, _settings.CoreSettings).base_path
