"""Resolution of the library's settings: environment variable, then ini key, then default.

Every knob is declared once, as a field of a frozen dataclass, with the environment variable
and ini key that set it. :func:`get` resolves a dataclass once per Pyramid registry and caches
it there, so nothing on the request path reads ``os.environ`` or the settings dictionary.

The library's settings classes use :func:`frozen_dataclass`, the standard
``dataclasses.dataclass(frozen=True)``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, dataclass_transform

__all__ = [
    "FALSE_WORDS",
    "TRUE_WORDS",
    "CoreSettings",
    "as_bool",
    "as_float_or_none",
    "as_list",
    "frozen_dataclass",
    "get",
    "ini_key",
    "is_true",
    "knob",
    "lookup",
    "resolve",
    "resolve_one",
]

_LOG = logging.getLogger(__name__)
# The one boolean vocabulary of every setting, ini option and query parameter of the library.
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "on", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "off", "0", ""})

T = TypeVar("T")


def as_bool(value: object) -> bool:
    """Interpret a configuration value as a boolean, refusing a word that is neither.

    True: ``true``, ``t``, ``yes``, ``y``, ``on``, ``1``; false: ``false``, ``f``, ``no``, ``n``,
    ``off``, ``0`` and the empty string (any case, spaces around ignored). Anything else is a
    ``ValueError``: a mistyped ``C2C_SQL_REQUEST_ID=ture`` stops the start-up with the name of the
    setting (see :func:`resolve`) instead of silently meaning false.
    """
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    msg = f"{value!r} is not a boolean (true/false, yes/no, on/off, 1/0)"
    raise ValueError(msg)


def is_true(value: object) -> bool:
    """``True`` for a word of :data:`TRUE_WORDS`, ``False`` for anything else (never raises)."""
    if isinstance(value, bool):
        return value
    return value is not None and str(value).strip().lower() in TRUE_WORDS


def as_float_or_none(value: object) -> float | None:
    """Interpret a configuration value as a float; empty means ``None``."""
    if value is None or str(value).strip() == "":
        return None
    return float(str(value))


def as_list(value: object) -> tuple[str, ...]:
    """Split a comma-separated configuration value, dropping empty items."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(item.strip() for item in str(value).split(",") if item.strip())


def lookup(
    settings: Mapping[str, Any] | None,
    env_name: str | None,
    ini_key: str | None,
    default: Any = None,
    type_: Callable[[Any], Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """Return the value of one knob: env var if set and non-empty, else ini key, else default.

    The converter ``type_`` applies to the environment and ini values, not to the default.
    """
    environ = os.environ if environ is None else environ
    if env_name is not None:
        value = environ.get(env_name)
        if value:
            return type_(value) if type_ is not None else value
    if ini_key is not None and settings is not None and ini_key in settings:
        value = settings[ini_key]
        return type_(value) if type_ is not None else value
    return default


def knob(
    default: Any,
    *,
    env: str | None = None,
    ini: str | None = None,
    convert: Callable[[Any], Any] | None = None,
    doc: str = "",
) -> Any:
    """Declare a dataclass field that is read from ``env`` or ``ini``."""
    return dataclasses.field(
        default=default, metadata={"env": env, "ini": ini, "convert": convert, "doc": doc}
    )


def resolve(cls: type[T], settings: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> T:
    """Build the frozen settings dataclass ``cls`` from the environment and the ini settings."""
    values = {
        field.name: _resolve_field(field, settings, environ)
        for field in dataclasses.fields(cls)  # type: ignore[arg-type]
        if field.metadata
    }
    return cls(**values)


def resolve_one(
    cls: type, name: str, settings: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> Any:
    """Resolve the single setting ``name`` of ``cls`` (for code that runs before the application)."""
    (field,) = (field for field in dataclasses.fields(cls) if field.name == name)
    return _resolve_field(field, settings, environ)


def ini_key(cls: type, name: str) -> str | None:
    """The ini key of the setting ``name`` of ``cls``."""
    (field,) = (field for field in dataclasses.fields(cls) if field.name == name)
    return field.metadata["ini"]  # type: ignore[no-any-return]


def _resolve_field(
    field: dataclasses.Field[Any], settings: Mapping[str, Any] | None, environ: Mapping[str, str] | None
) -> Any:
    meta = field.metadata
    try:
        return lookup(settings, meta["env"], meta["ini"], field.default, meta["convert"], environ)
    except ValueError as error:
        from pyramid.exceptions import ConfigurationError

        names = " / ".join(n for n in (meta["env"], meta["ini"]) if n)
        raise ConfigurationError(f"Invalid value for {names}: {error}") from error


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen_dataclass(cls: type[T]) -> type[T]:
    """``@dataclasses.dataclass(frozen=True)``: the decorator of the library's settings classes."""
    return dataclasses.dataclass(frozen=True)(cls)


def get(registry: Any, cls: type[T]) -> T:
    """Return the settings ``cls`` of this application, resolved once and cached on the registry."""
    key = f"c2cwsgiutils.settings.{cls.__module__}.{cls.__qualname__}"
    try:
        return registry[key]  # type: ignore[no-any-return]
    except KeyError:
        value = resolve(cls, registry.settings)
        registry[key] = value
        return value


@frozen_dataclass
class CoreSettings:
    """Knobs shared by most capabilities."""

    base_path: str = knob(
        "/c2c", env="C2C_BASE_PATH", ini="c2c.base_path", doc="URL prefix of the library's views."
    )
    secret: str = knob(
        "", env="C2C_SECRET", ini="c2c.secret", doc="Shared secret protecting the admin views."
    )
    development: bool = knob(
        False,
        env="DEVELOPMENT",
        ini="c2c.development",
        convert=as_bool,
        doc="Development mode: stack traces and details in error responses.",
    )


def reference(classes: list[type]) -> str:
    """Render the settings of ``classes`` as the Markdown table of the README."""
    lines = ["| Environment variable | Ini key | Default | Meaning |", "|---|---|---|---|"]
    for cls in classes:
        for field in dataclasses.fields(cls):
            meta = field.metadata
            if not meta:
                continue
            env = f"`{meta['env']}`" if meta["env"] else "-"
            ini = f"`{meta['ini']}`" if meta["ini"] else "-"
            default = field.default
            if isinstance(default, tuple):
                default = ",".join(str(item) for item in default)
            default = "-" if default in (None, "") else f"`{default}`"
            lines.append(f"| {env} | {ini} | {default} | {meta['doc']} |")
    return "\n".join(lines) + "\n"


def all_settings_classes() -> list[type]:
    """Every settings dataclass of the library (imports each module of the package)."""
    import importlib
    import pkgutil

    import c2cwsgiutils

    found: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(c2cwsgiutils.__path__, "c2cwsgiutils."):
        if module_info.name.startswith(
            ("c2cwsgiutils.acceptance", "c2cwsgiutils.scripts", "c2cwsgiutils.gunicorn_config")
        ):
            continue
        try:
            module = importlib.import_module(module_info.name)
        except ImportError:  # an optional extra is missing: its settings are not listed
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
                and any(f.metadata.get("env") or f.metadata.get("ini") for f in dataclasses.fields(value))
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


if __name__ == "__main__":
    print(reference(all_settings_classes()), end="")  # noqa: T201  # prints the README table
