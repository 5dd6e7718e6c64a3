"""Set up a process that is not a WSGI server (a script, a worker) from the application's ini file.

Typical script::

    def main() -> None:
        parser = argparse.ArgumentParser(description="My script.")
        c2cwsgiutils.setup_process.fill_arguments(parser)
        args = parser.parse_args()
        env = c2cwsgiutils.setup_process.bootstrap_application_from_options(args)
        settings = env["registry"].settings

A configuration URI without a scheme (``production.ini``, ``/app/production.ini#app``) is read
with the ``c2c://`` loader, so the environment variables are available as ``%(NAME)s`` in the
file, as with ``c2c:///app/production.ini``.

.. versionadded:: 6.0
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import warnings
from typing import Any, TypedDict, cast

__all__ = [
    "PyramidEnv",
    "bootstrap_application",
    "bootstrap_application_from_options",
    "fill_arguments",
    "init",
    "init_logging",
]

_DEFAULT_CONFIG_URI = "c2c:///app/production.ini"
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# What init() includes, in order. Each is included only if the module exists: some
# capabilities are not written yet in this code base (their issues are open); once a module
# exists, a missing optional dependency is reported by the module itself.
_INIT_CAPABILITIES = (
    "c2cwsgiutils.coverage_setup",
    "c2cwsgiutils.sentry",
    "c2cwsgiutils.broadcast",
    "c2cwsgiutils.redis_stats",
    "c2cwsgiutils.sql_profiler",
)


class PyramidEnv(TypedDict):
    """The environment returned by :func:`pyramid.paster.bootstrap`."""

    root: Any
    closer: Any
    registry: Any
    request: Any
    root_factory: Any
    app: Any


def _config_uri(config_uri: str) -> str:
    """Read a plain file name with the ``c2c://`` loader (environment interpolation)."""
    if _SCHEME_RE.match(config_uri):
        return config_uri
    return f"c2c://{config_uri}"


def fill_arguments(
    parser: argparse.ArgumentParser,
    use_attribute: bool = False,
    default_config_uri: str = _DEFAULT_CONFIG_URI,
) -> None:
    """Add the configuration arguments to a command line parser.

    Args:
        parser: the parser.
        use_attribute: add the options ``--config-uri`` and ``--config-vars`` instead of the
            optional positional arguments ``config_uri`` and ``config_vars``.
        default_config_uri: the default configuration URI.
    """
    uri_help = f"The configuration URI (default: {default_config_uri})"
    vars_help = "Variables for the configuration file, as name=value (e.g. http_port=8080)"
    if use_attribute:
        parser.add_argument("--config-uri", dest="config_uri", default=default_config_uri, help=uri_help)
        parser.add_argument("--config-vars", dest="config_vars", nargs="*", default=[], help=vars_help)
    else:
        parser.add_argument("config_uri", nargs="?", default=default_config_uri, help=uri_help)
        parser.add_argument("config_vars", nargs="*", default=[], help=vars_help)


def _setup_logging(config_uri: str, options: dict[str, str] | None = None) -> None:
    from pyramid.paster import setup_logging

    setup_logging(config_uri, options)


def init(config_file: str = _DEFAULT_CONFIG_URI) -> Any:
    """Set up logging and the library's process-wide capabilities for a process without WSGI.

    Configures logging from the ini file, reads the application settings, then includes in a
    new Configurator the capabilities a worker needs: coverage, Sentry, broadcast, Redis
    statistics and the SQL profiler.

    Args:
        config_file: the configuration URI (or path) of the ini file.

    Returns:
        The committed :class:`pyramid.config.Configurator`.
    """
    from pyramid.config import Configurator
    from pyramid.paster import get_appsettings

    config_uri = _config_uri(config_file)
    _setup_logging(config_uri)
    settings = get_appsettings(config_uri)
    config = Configurator(settings=settings)
    for capability in _INIT_CAPABILITIES:
        if importlib.util.find_spec(capability) is not None:
            config.include(capability)
    config.commit()
    return config


def init_logging(config_file: str = _DEFAULT_CONFIG_URI) -> None:
    """Configure logging from the ini file.

    .. deprecated:: 6.0
        Use :func:`init` or :func:`bootstrap_application`.

    Args:
        config_file: the configuration URI (or path) of the ini file.
    """
    warnings.warn(
        "c2cwsgiutils.setup_process.init_logging is deprecated: use init or bootstrap_application",
        DeprecationWarning,
        stacklevel=2,
    )
    _setup_logging(_config_uri(config_file))


def bootstrap_application_from_options(args: argparse.Namespace) -> PyramidEnv:
    """Set up logging and load the application, with the arguments of :func:`fill_arguments`.

    Args:
        args: the parsed command line.

    Returns:
        The Pyramid environment (``app``, ``registry``, ``request``, ``root``, ``closer``...).
    """
    options = _parse_vars(args.config_vars) if args.config_vars else None
    return bootstrap_application(args.config_uri, options)


def _parse_vars(items: list[str]) -> dict[str, str]:
    """``["name=value", ...]`` as a dictionary (the ``pserve``/``pshell`` syntax)."""
    result = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise ValueError(f"invalid configuration variable {item!r}: expected name=value")
        result[name] = value
    return result


def bootstrap_application(
    config_uri: str = _DEFAULT_CONFIG_URI, options: dict[str, str] | None = None
) -> PyramidEnv:
    """Set up logging and load the application from its ini file (:func:`pyramid.paster.bootstrap`).

    Args:
        config_uri: the configuration URI (or path) of the ini file.
        options: variables for the ini file (``%(name)s``); they win over the environment.

    Returns:
        The Pyramid environment (``app``, ``registry``, ``request``, ``root``, ``closer``...).
        Call ``env["closer"]()`` when done, or use it as a context manager.
    """
    from pyramid.paster import bootstrap

    uri = _config_uri(config_uri)
    _setup_logging(uri, options)
    return cast("PyramidEnv", bootstrap(uri, options=options))
