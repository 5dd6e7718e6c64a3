"""Common operational tools for Pyramid WSGI services.

The configuration helpers below are the ones a ``gunicorn.conf.py`` or a script uses before
any Pyramid application exists.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import inspect
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from c2cwsgiutils import _settings

__all__ = ["get_config_defaults", "get_logconfig_dict", "get_paste_config", "request_id_header"]

_LOG = logging.getLogger(__name__)
_DEFAULT_DATEFMT = "[%Y-%m-%d %H:%M:%S %z]"


def get_config_defaults(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment as ``configparser`` interpolation defaults.

    ``%`` is doubled so that values survive interpolation. ``configparser`` folds key case, so
    when two variable names differ only by case the first one wins and a warning names both.
    """
    environ = os.environ if environ is None else environ
    result: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, value in environ.items():
        lower = name.lower()
        if lower in seen:
            _LOG.warning(
                "The environment variables '%s' and '%s' differ only by case: '%s' is ignored",
                seen[lower],
                name,
                name,
            )
            continue
        seen[lower] = name
        result[name] = value.replace("%", "%%")
    return result


def _read_ini(filename: str, environ: Mapping[str, str] | None = None) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    # Keep key case as written; set before the defaults are added, which optionxform also applies to
    # (the constructor's ``defaults=`` would lower-case them and %(LOG_TYPE)s would not be found).
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_dict({parser.default_section: get_config_defaults(environ)})
    with open(filename, encoding="utf-8") as ini:
        parser.read_file(ini)
    # ``here`` and ``__file__`` are what PasteDeploy provides to the same file.
    parser["DEFAULT"]["here"] = os.path.dirname(os.path.abspath(filename)).replace("%", "%%")
    parser["DEFAULT"]["__file__"] = os.path.abspath(filename).replace("%", "%%")
    return parser


def _split_names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _handler_class(name: str, class_name: str) -> tuple[str, Any]:
    """Resolve ``class`` like ``fileConfig`` does: in the ``logging`` namespace first."""
    if "." not in class_name or class_name.startswith("handlers."):
        dotted = f"logging.{class_name}"
    else:
        dotted = class_name
    module_name, _, attribute = dotted.rpartition(".")
    try:
        return dotted, getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"handler_{name}: cannot import the class {class_name}: {error}") from error


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        parent = _dotted_name(node.value)
        return None if parent is None else f"{parent}.{node.attr}"
    return None


def _config_value(node: ast.expr) -> Any:
    """Literal values as themselves, names such as ``sys.stdout`` as ``ext://`` references."""
    dotted = _dotted_name(node)
    if dotted is not None:
        if dotted.startswith("handlers."):
            dotted = f"logging.{dotted}"
        return f"ext://{dotted}"
    if isinstance(node, ast.Tuple):
        return tuple(_config_value(element) for element in node.elts)
    if isinstance(node, ast.List):
        return [_config_value(element) for element in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _config_value(key): _config_value(value)
            for key, value in zip(node.keys, node.values, strict=True)
            if key is not None
        }
    return ast.literal_eval(node)


def _parse(text: str, handler: str, key: str) -> Any:
    try:
        return _config_value(ast.parse(text.strip(), mode="eval").body)
    except (ValueError, SyntaxError, TypeError) as error:
        raise ValueError(
            f"handler_{handler}: cannot parse {key} = {text.strip()}: "
            "expected Python literals, where names like sys.stdout are allowed"
        ) from error


def _handler_dict(parser: configparser.ConfigParser, name: str) -> dict[str, Any]:
    section_name = f"handler_{name}"
    if not parser.has_section(section_name):
        raise ValueError(f"The handler '{name}' is listed in [handlers] but has no [{section_name}] section")
    section = parser[section_name]
    if not section.get("class", "").strip():
        raise ValueError(f"{section_name}: 'class' is missing")
    class_name, handler_class = _handler_class(name, section["class"].strip())
    handler: dict[str, Any] = {"class": class_name}
    if section.get("args", "").strip():
        args = _parse(section["args"], name, "args")
        if not isinstance(args, tuple):
            args = (args,)
        handler.update(_bind_args(name, handler_class, args))
    if section.get("kwargs", "").strip():
        kwargs = _parse(section["kwargs"], name, "kwargs")
        if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
            raise ValueError(f"{section_name}: kwargs must be a dict with text keys, got {section['kwargs']}")
        reserved = sorted({"class", "formatter", "level", "filters", "()", "."} & kwargs.keys())
        if reserved:
            raise ValueError(f"{section_name}: kwargs cannot set {', '.join(reserved)}")
        handler.update(kwargs)
    if section.get("formatter", "").strip():
        handler["formatter"] = section["formatter"].strip()
    if section.get("level", "").strip():
        handler["level"] = section["level"].strip().upper()
    return handler


def _bind_args(name: str, handler_class: Any, args: tuple[Any, ...]) -> dict[str, Any]:
    """Give the positional ``args`` the names of the class's parameters (``dictConfig`` needs names)."""
    try:
        signature = inspect.signature(handler_class)
        bound = signature.bind_partial(*args)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"handler_{name}: args = {args!r} do not fit {handler_class.__name__}: {error}"
        ) from error
    for parameter_name in bound.arguments:
        if signature.parameters[parameter_name].kind is inspect.Parameter.VAR_POSITIONAL:
            raise ValueError(
                f"handler_{name}: {handler_class.__name__} takes *args, its parameters have no "
                "names: use 'kwargs = {...}' instead of 'args'"
            )
    return dict(bound.arguments)


def _logger_dict(section: configparser.SectionProxy, root: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"handlers": _split_names(section.get("handlers", ""))}
    if section.get("level", "").strip():
        result["level"] = section["level"].strip().upper()
    if not root:
        # As with fileConfig, loggers propagate unless told otherwise; dictConfig would keep the
        # current value instead (gunicorn turns propagation off on its loggers).
        value = section.get("propagate", "").strip() or "1"
        try:
            result["propagate"] = _settings.as_bool(value)
        except ValueError as error:
            raise ValueError(f"{section.name}: propagate = {error}") from error
    return result


def _ini_path(uri: str) -> str:
    """The file of a PasteDeploy/plaster config URI (``c2c:///abs.ini#main``, ``config:x.ini``...)."""
    path = uri.split("#", 1)[0]
    match = re.match(r"^(?:[a-z][a-z0-9+.-]*://|config:)", path, re.IGNORECASE)
    if match is not None:
        path = path[match.end() :]
    return path


def get_logconfig_dict(filename: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Translate the logging sections of an ini file into a ``logging.config.dictConfig`` dict.

    Environment variables are available as ``%(NAME)s`` in the file. Handlers may use
    ``args = (sys.stdout,)`` (positional arguments, any number, as ``fileConfig`` accepts them) or
    ``kwargs = {...}``; names such as ``sys.stdout`` become ``ext://`` references. Handler levels
    and several handlers per logger are kept, and loggers propagate unless ``propagate = 0``.

    Args:
        filename: the ini file, or a config URI such as ``c2c:///app/production.ini``.
        environ: the interpolation values (default: ``os.environ``).

    Returns:
        The ``dictConfig`` dictionary (``disable_existing_loggers`` is false). Its
        ``gunicorn.access`` logger has a filter that masks secrets and adds the request's fields
        (:mod:`c2cwsgiutils._gunicorn_access`), for the ``gunicorn.conf.py`` files that use
        gunicorn's own logger.

    Raises:
        ValueError: a handler is missing or its arguments cannot be used.
    """
    parser = _read_ini(_ini_path(filename), environ)
    result: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {},
        "handlers": {},
        "formatters": {},
    }
    for name in _split_names(parser.get("loggers", "keys", fallback="")):
        section_name = f"logger_{name}"
        if not parser.has_section(section_name):
            raise ValueError(
                f"The logger '{name}' is listed in [loggers] but has no [{section_name}] section"
            )
        section = parser[section_name]
        if name == "root":
            result["root"] = _logger_dict(section, root=True)
        else:
            result["loggers"][section.get("qualname", name).strip()] = _logger_dict(section, root=False)
    for name in _split_names(parser.get("handlers", "keys", fallback="")):
        result["handlers"][name] = _handler_dict(parser, name)
    for name in _split_names(parser.get("formatters", "keys", fallback="")):
        section = parser[f"formatter_{name}"]
        formatter = {
            "format": section.get("format", raw=True, fallback=None),
            "datefmt": section.get("datefmt", raw=True, fallback=_DEFAULT_DATEFMT),
            "class": section.get("class", raw=True, fallback="logging.Formatter"),
        }
        style = section.get("style", raw=True, fallback="").strip()
        if style:
            formatter["style"] = style
        result["formatters"][name] = formatter
    if result["loggers"] or "root" in result:  # else gunicorn keeps its own logging defaults
        _add_access_filter(result, _request_id_header(parser, os.environ if environ is None else environ))
    for logger_name, logger in (("root", result.get("root", {})), *result["loggers"].items()):
        missing = [handler for handler in logger.get("handlers", []) if handler not in result["handlers"]]
        if missing:
            raise ValueError(
                f"The logger '{logger_name}' uses the handler(s) {', '.join(missing)}, "
                "which are not listed in [handlers]"
            )
    return result


def _app_options(parser: configparser.ConfigParser, keys: Sequence[str]) -> dict[str, str]:
    """The values of ``keys`` in the ini's ``[app:...]`` sections (the first section that sets one wins).

    Only these keys are interpolated: another option may name a variable that only the
    application's environment has.
    """
    result: dict[str, str] = {}
    for section in parser.sections():
        if section.startswith("app:"):
            for key in keys:
                if key not in result and parser.has_option(section, key):
                    result[key] = parser.get(section, key)
    return result


def request_id_header(filename: str, environ: Mapping[str, str] | None = None) -> str:
    """``C2C_REQUEST_ID_HEADER``, else the ``c2c.request_id_header`` of the ini file, else ``""``.

    For the gunicorn master, which logs the access lines before (and without) the application.
    """
    environ = os.environ if environ is None else environ
    try:
        parser = _read_ini(_ini_path(filename), environ)
    except (OSError, configparser.Error):  # no ini (a test, a script): the environment alone
        parser = configparser.ConfigParser()
    return _request_id_header(parser, environ)


def _request_id_header(parser: configparser.ConfigParser, environ: Mapping[str, str]) -> str:
    """``C2C_REQUEST_ID_HEADER`` or the ini's ``c2c.request_id_header``, as the application reads it."""
    from c2cwsgiutils.request_tracking import RequestTrackingSettings

    keys = [key for key in (_settings.ini_key(RequestTrackingSettings, "request_id_header"),) if key]
    value = _settings.resolve_one(
        RequestTrackingSettings, "request_id_header", _app_options(parser, keys), environ
    )
    return str(value)


def _add_access_filter(config: dict[str, Any], request_id_header: str) -> None:
    """Send gunicorn's access lines through the filter that masks secrets and adds the fields.

    Unless the ini configures ``gunicorn.access`` itself, its records go to the root handlers
    (JSON with ``LOG_TYPE=json``) instead of gunicorn's plain stdout handler, which the filter
    could not reach: a ``dictConfig`` that names a logger replaces its handlers.
    """
    config["filters"] = {
        "c2c_gunicorn_access": {
            "()": "c2cwsgiutils._gunicorn_access.AccessLogFilter",
            "request_id_header": request_id_header,
        }
    }
    access = config["loggers"].setdefault("gunicorn.access", {"handlers": [], "propagate": True})
    access.setdefault("filters", []).append("c2c_gunicorn_access")


def get_paste_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Return the ini file given to gunicorn (``--paste``/``--paster``), else ``C2CWSGIUTILS_CONFIG``.

    The default is ``production.ini``.
    """
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    for index, arg in enumerate(argv):
        match = re.match(r"^--paster?=(.+)$", arg)
        if match:
            return match.group(1)
        if arg in ("--paste", "--paster") and index + 1 < len(argv):
            return argv[index + 1]
    return environ.get("C2CWSGIUTILS_CONFIG", "production.ini")
