"""The installed dependencies against the ranges this library declares, checked at start-up.

Services often install their lock file with ``pip install --no-deps``: nothing then checks that
the versions they pin are ones the library works with, and an old one would fail on some
request. :func:`check` reads the ranges from the library's own metadata (``pyproject.toml``, one
source) and, for each dependency that is installed:

- below its floor: refuses to start, with one line naming the package and the minimum version;
- at or above an upper bound (a major release known to break the library): one warning; the
  feature that uses it may misbehave, the service still starts.
"""

from __future__ import annotations

import logging
from importlib import metadata

from c2cwsgiutils import _process_state

__all__ = ["OutdatedDependencyError", "check", "installed"]

_LOG = logging.getLogger("c2cwsgiutils")
_checked: list[bool] = []


class OutdatedDependencyError(RuntimeError):
    """An installed dependency is older than the version the library needs."""


def installed(name: str) -> str | None:
    """The installed version of the distribution ``name``, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check(distribution: str = "c2cwsgiutils") -> None:
    """Check the installed dependencies of ``distribution`` once per process (see the module).

    Raises:
        OutdatedDependencyError: a dependency is installed in a version below the floor.
    """
    if _checked:
        return
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        _checked.append(True)
        return  # not installed as a distribution (a copy of the sources): nothing declared
    too_old: list[str] = []
    seen: set[str] = set()
    for text in dict.fromkeys(requirements):
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        version_text = installed(requirement.name)
        if version_text is None or not requirement.specifier:
            continue
        try:
            version = Version(version_text)
        except InvalidVersion:
            continue
        if requirement.specifier.contains(version, prereleases=True) or requirement.name in seen:
            continue
        seen.add(requirement.name)
        floors = [spec.version for spec in requirement.specifier if spec.operator in (">=", ">", "==", "~=")]
        if any(version < Version(floor) for floor in floors):
            too_old.append(
                f"{requirement.name} {version_text} is installed, {distribution} needs {requirement}"
            )
        else:
            _LOG.warning(
                "%s %s is installed, %s is tested with %s%s: what uses it may misbehave",
                requirement.name,
                version_text,
                distribution,
                requirement.name,
                requirement.specifier,
            )
    _checked.append(True)
    if too_old:
        raise OutdatedDependencyError("; ".join(sorted(set(too_old))))


@_process_state.on_reset
def _reset() -> None:
    """Check again at the next call (for tests)."""
    _checked.clear()
