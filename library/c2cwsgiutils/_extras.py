"""Optional extras: a clear error naming the extra when a capability's dependency is missing."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, capability: str) -> ModuleType:
    """Import ``module`` or raise a ``ConfigurationError`` that names the extra to install."""
    imported = sys.modules.get(module)
    if imported is not None:
        return imported
    try:
        return importlib.import_module(module)
    except ImportError as error:
        from pyramid.exceptions import ConfigurationError

        raise ConfigurationError(
            f"{capability} needs the Python package '{module.split('.', maxsplit=1)[0]}': "
            f"install it with: pip install 'c2cwsgiutils[{extra}]'"
        ) from error
