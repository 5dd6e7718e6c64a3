"""Version information: ``GET {base}/versions.json`` serves the file written by ``c2cwsgiutils-genversion``.

The file (``/app/versions.json`` by default; our addition: ``C2C_VERSIONS_PATH`` /
``c2c.versions_path`` to choose another path) is read once, when the application is built. When
it does not exist, no route is registered. Its format is::

    {"main": {"git_hash": "<hash>", "git_tag": "<tag, optional>"}, "packages": {"<name>": "<version>"}}

The view lists every installed package with its version (what an attacker looks for), so, as
in c2cwsgiutils 6.1, it is a protected view: it needs the secret (or, in GitHub mode, a login
with the repository permission), else it answers 403 (see :func:`c2cwsgiutils.auth.auth_view`).
``C2C_VERSIONS_PUBLIC=true`` / ``c2c.versions_public = true`` makes it public again, as in 6.0.
The health checks (the ``version`` check, the ``releaseId`` of ``application/health+json``) and
:func:`get_version` read the file, not the view: they do not need the secret.

.. versionadded:: 6.0
.. versionchanged:: 6.1
   ``versions.json`` needs the secret, unless ``C2C_VERSIONS_PUBLIC`` is true.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from c2cwsgiutils import _settings

__all__ = ["VersionSettings", "get_version", "get_versions", "includeme"]

_LOG = logging.getLogger(__name__)
_REGISTRY_KEY = "c2cwsgiutils.version.versions"


@_settings.frozen_dataclass
class VersionSettings:
    """Settings of the version information."""

    path: str = _settings.knob(
        "/app/versions.json",
        env="C2C_VERSIONS_PATH",
        ini="c2c.versions_path",
        doc="Path of the versions.json file written by c2cwsgiutils-genversion.",
    )
    public: bool = _settings.knob(
        False,
        env="C2C_VERSIONS_PUBLIC",
        ini="c2c.versions_public",
        convert=_settings.as_bool,
        doc="Serve versions.json without the secret (as c2cwsgiutils 6.0 did).",
    )


def _read(path: str) -> dict[str, Any] | None:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as versions_file:
        versions = json.load(versions_file)
    if not isinstance(versions, dict):
        msg = f"{path} must hold a JSON object, as written by c2cwsgiutils-genversion"
        raise TypeError(msg)
    return versions


def _git_hash(versions: Mapping[str, Any] | None) -> str | None:
    main = (versions or {}).get("main")
    if isinstance(main, Mapping) and main.get("git_hash"):
        return str(main["git_hash"])
    return None


def get_versions(registry: Any) -> dict[str, Any] | None:
    """Return the content of versions.json as read when the application was built.

    Args:
        registry: the Pyramid registry of an application that included this module.

    Returns:
        The versions (``{"main": {...}, "packages": {...}}``), or ``None`` when there is no file.
    """
    try:
        return registry[_REGISTRY_KEY]  # type: ignore[no-any-return]
    except KeyError:
        return None


def get_version(registry: Any = None) -> str | None:
    """Return the git hash of the running application (``main.git_hash`` of versions.json).

    Args:
        registry: the Pyramid registry of an application that included this module; without
            it, the file given by ``C2C_VERSIONS_PATH`` (default ``/app/versions.json``) is read.

    Returns:
        The git hash, or ``None`` when there is no versions.json.
    """
    if registry is not None:
        try:
            return _git_hash(registry[_REGISTRY_KEY])
        except KeyError:
            pass
    settings = registry.settings if registry is not None else None
    return _git_hash(_read(_settings.resolve(VersionSettings, settings).path))


def _set_version_gauge(versions: Mapping[str, Any]) -> None:
    """Set ``<prefix>version{git_hash, <packages>..., [application]} = 1`` (with prometheus_client)."""
    import importlib.util
    import re

    if importlib.util.find_spec("prometheus_client") is None:
        return
    from c2cwsgiutils import _metrics

    conf = _metrics.settings()
    packages = versions.get("packages") or {}
    labels = {"git_hash": _git_hash(versions) or "<missing>"}
    for package in conf.packages:
        labels[re.sub(r"[^a-zA-Z0-9]", "_", package)] = str(packages.get(package, "<missing>"))
    if conf.application_package:
        labels["application"] = str(packages.get(conf.application_package, "<missing>"))
    _metrics.version_gauge(labels).labels(**labels).set(1)


def includeme(config: Any) -> None:
    """Read versions.json and, if it exists, serve it on ``{base}/versions.json`` (route ``c2c_versions``).

    The view needs the secret unless ``C2C_VERSIONS_PUBLIC`` is true.
    """
    conf = _settings.get(config.registry, VersionSettings)
    versions = _read(conf.path)
    config.registry[_REGISTRY_KEY] = versions
    if versions is None:
        _LOG.info("No version information: %s does not exist", conf.path)
        return
    main = versions.get("main") or {}
    if main.get("git_tag"):
        _LOG.info("Starting version %s (%s)", main["git_tag"], main.get("git_hash"))
    else:
        _LOG.info("Starting version %s", main.get("git_hash"))
    _set_version_gauge(versions)

    # Serialized once with the fast_json serializer and its settings: the content never changes,
    # and the view does not depend on which renderers the application registered.
    from pyramid.response import Response

    from c2cwsgiutils import auth, pretty_json

    json_conf = _settings.get(config.registry, pretty_json.JsonSettings)
    body = pretty_json.fast_dumps(
        versions, sort_keys=json_conf.sort_keys, indent=2 if json_conf.pretty_print else None
    ).encode("utf-8")
    base_path = _settings.get(config.registry, _settings.CoreSettings).base_path

    public = conf.public

    def versions_view(request: Any) -> Any:
        if not public:  # the package versions help attackers: protected as in 6.1
            auth.auth_view(request)
        return Response(body=body, content_type="application/json", charset="utf-8")

    config.add_route("c2c_versions", base_path + "/versions.json", request_method="GET")
    config.add_view(versions_view, route_name="c2c_versions", http_cache=0)
