"""The ``c2c://`` plaster loader: PasteDeploy ini files with the environment as interpolation values.

With it, every ``%(NAME)s`` of the ini file can refer to an environment variable, for the Pyramid
scripts (``pserve``, ``proutes``, ``pshell``, ``pviews``...) and for ``gunicorn --paste``::

    proutes c2c://production.ini         # relative path
    pserve c2c:///app/production.ini     # absolute path

The schemes ``c2c``, ``c2c+ini`` and ``c2c+egg`` are registered as ``plaster.loader_factory`` and
``plaster.wsgi_loader_factory`` entry points. Values given by the caller (for example
``pserve c2c://production.ini http_port=8080``) win over the environment.

Logging is configured with :func:`logging.config.dictConfig` from
:func:`c2cwsgiutils.get_logconfig_dict`, so handlers may use ``args = (sys.stdout,)`` or
``kwargs = {...}``, and keep their ``level``.

.. versionadded:: 6.0
"""

from __future__ import annotations

import logging
import logging.config
import os
from collections.abc import Mapping
from typing import Any

from plaster_pastedeploy import Loader as BaseLoader

from c2cwsgiutils import get_config_defaults, get_logconfig_dict

__all__ = ["Loader"]


class Loader(BaseLoader):  # type: ignore[misc]  # plaster_pastedeploy is untyped
    """PasteDeploy plaster loader whose interpolation defaults include the environment."""

    def _with_environment(self, defaults: Mapping[str, Any] | None) -> dict[str, Any]:
        # The environment comes first, so that ``here``, ``__file__``, the URI options and the
        # caller's values win over a variable of the same name (the base loader adds the first
        # three after these defaults, and configparser folds the case of the names).
        taken = {"here", "__file__", *(str(name).lower() for name in self.uri.options)}
        result: dict[str, Any] = {
            name: value for name, value in get_config_defaults().items() if name.lower() not in taken
        }
        result.update(defaults or {})
        return result

    def get_settings(self, section: str | None = None, defaults: Mapping[str, Any] | None = None) -> Any:
        """Return the settings of a section; ``%(NAME)s`` may name an environment variable."""
        return super().get_settings(section, self._with_environment(defaults))

    def get_wsgi_app(self, name: str | None = None, defaults: Mapping[str, Any] | None = None) -> Any:
        """Load the WSGI application; ``%(NAME)s`` may name an environment variable."""
        return super().get_wsgi_app(name, self._with_environment(defaults))

    def get_wsgi_server(self, name: str | None = None, defaults: Mapping[str, Any] | None = None) -> Any:
        """Load the WSGI server; ``%(NAME)s`` may name an environment variable."""
        return super().get_wsgi_server(name, self._with_environment(defaults))

    def get_wsgi_filter(self, name: str | None = None, defaults: Mapping[str, Any] | None = None) -> Any:
        """Load a WSGI filter; ``%(NAME)s`` may name an environment variable."""
        return super().get_wsgi_filter(name, self._with_environment(defaults))

    def get_wsgi_app_settings(
        self, name: str | None = None, defaults: Mapping[str, Any] | None = None
    ) -> Any:
        """Return the application's settings; ``%(NAME)s`` may name an environment variable."""
        return super().get_wsgi_app_settings(name, self._with_environment(defaults))

    def setup_logging(self, defaults: Mapping[str, Any] | None = None) -> None:
        """Configure logging from the ``[loggers]``, ``[handlers]`` and ``[formatters]`` sections.

        Without a ``[loggers]`` section, :func:`logging.basicConfig` is used, as PasteDeploy does.

        Args:
            defaults: additional interpolation values (they win over the environment).
        """
        if "loggers" not in self.get_sections():
            logging.basicConfig()
            return
        environ: dict[str, str] = dict(os.environ)
        # ``get_logconfig_dict`` escapes ``%`` in these values: URI options and caller values are
        # literal values, like environment variables.
        environ.update({str(k): str(v) for k, v in self.uri.options.items()})
        environ.update({str(k): str(v) for k, v in (defaults or {}).items() if k not in ("here", "__file__")})
        logging.config.dictConfig(get_logconfig_dict(self.filepath, environ))

    def __repr__(self) -> str:
        """Return ``c2cwsgiutils.loader.Loader(uri="<uri>")``."""
        return f'c2cwsgiutils.loader.Loader(uri="{self.uri}")'
