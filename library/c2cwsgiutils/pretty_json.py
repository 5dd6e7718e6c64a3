"""JSON renderers: ``json``, ``fast_json``, ``cornice_json`` and ``cornice_fast_json``.

``json`` is Pyramid's renderer on the standard library serializer; ``fast_json`` serializes with
orjson, keeps non-ASCII characters and does not escape ``/``. Both honour
``C2C_JSON_PRETTY_PRINT`` (indent of 2) and ``C2C_JSON_SORT_KEYS``. The cornice variants wrap
the same serializers in cornice's renderer, which cornice needs to render validation errors.

Unlike the reference implementation (ujson), ``fast_json`` honours the renderer's adapters
(``renderer.add_adapter``) and ``__json__`` methods for the values orjson cannot serialize
natively, and falls back to ``str(value)``, so it never fails on an odd value.

.. versionadded:: 6.0
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import orjson

from c2cwsgiutils import _settings

__all__ = ["JsonSettings", "fast_dumps", "includeme"]

_LOG = logging.getLogger(__name__)


@_settings.frozen_dataclass
class JsonSettings:
    """Settings of the JSON renderers."""

    pretty_print: bool = _settings.knob(
        False,
        env="C2C_JSON_PRETTY_PRINT",
        ini="c2c.json.pretty_print",
        convert=_settings.as_bool,
        doc="Indent the JSON rendered by the library's renderers (2 spaces).",
    )
    sort_keys: bool = _settings.knob(
        False,
        env="C2C_JSON_SORT_KEYS",
        ini="c2c.json.sort_keys",
        convert=_settings.as_bool,
        doc="Sort the keys of the JSON objects rendered by the library's renderers.",
    )


def _str_fallback(default: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    def fallback(value: Any) -> Any:
        if default is not None:
            try:
                return default(value)
            except TypeError:
                pass
        return str(value)

    return fallback


def fast_dumps(
    value: Any,
    *,
    default: Callable[[Any], Any] | None = None,
    sort_keys: bool = False,
    indent: int | None = None,
    **_: Any,
) -> str:
    """Serialize ``value`` with orjson, with the signature of ``json.dumps`` used by Pyramid.

    Non-ASCII characters are kept; ``indent`` pretty-prints (orjson only knows an indent of 2);
    values orjson cannot serialize go through ``default``, then ``str()``. Integers beyond 64
    bits, which orjson refuses, are serialized by the standard library with the same options.

    Args:
        value: the value to serialize.
        default: converter for the values orjson cannot serialize (Pyramid's adapters).
        sort_keys: sort the keys of the objects.
        indent: any true value pretty-prints with an indent of 2.

    Returns:
        The JSON text.
    """
    fallback = _str_fallback(default)
    option = orjson.OPT_NON_STR_KEYS
    if sort_keys:
        option |= orjson.OPT_SORT_KEYS
    if indent:
        option |= orjson.OPT_INDENT_2
    try:
        return orjson.dumps(value, default=fallback, option=option).decode()
    except orjson.JSONEncodeError:
        # Rare (64-bit overflow, recursion limit of orjson): the standard library is slower but total.
        return json.dumps(
            value,
            default=fallback,
            sort_keys=sort_keys,
            indent=2 if indent else None,
            ensure_ascii=False,
            separators=(",", ": ") if indent else (",", ":"),
        )


def includeme(config: Any) -> None:
    """Register the ``json``, ``fast_json``, ``cornice_json`` and ``cornice_fast_json`` renderers.

    The cornice variants are registered only when cornice (extra ``standard``) is installed.
    """
    from pyramid.renderers import JSON

    conf = _settings.get(config.registry, JsonSettings)
    options: dict[str, Any] = {"sort_keys": conf.sort_keys, "indent": 2 if conf.pretty_print else None}
    config.add_renderer("json", JSON(**options))
    config.add_renderer("fast_json", JSON(serializer=fast_dumps, **options))
    try:
        from cornice.renderer import CorniceRenderer
    except ImportError:
        _LOG.debug("cornice is not installed: no cornice_json and cornice_fast_json renderers")
        return
    config.add_renderer("cornice_json", CorniceRenderer(**options))
    config.add_renderer("cornice_fast_json", CorniceRenderer(serializer=fast_dumps, **options))
