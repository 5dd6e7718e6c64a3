"""``c2cwsgiutils-genversion [--output PATH] [GIT_TAG] GIT_HASH``: write the ``versions.json`` file.

The packages and their versions come from the installed distributions
(:func:`importlib.metadata.distributions`), named as ``pip`` shows them. The file is written to
``./versions.json`` by default (as in the reference implementation); the application serves
``/app/versions.json`` unless ``C2C_VERSIONS_PATH`` says otherwise, so a Dockerfile typically runs::

    RUN c2cwsgiutils-genversion --output=/app/versions.json $(git rev-parse HEAD)

.. versionadded:: 6.0
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["_get_package_version", "get_packages", "main"]

_SRC_VERSION_RE = re.compile(r"^(?P<name>[^=\s#]+)\s*===?\s*(?P<version>\S+)\s*$")
_EDITABLE_RE = re.compile(r"^#.*\((?P<name>[^=()\s]+)===?(?P<version>[^=()\s]+)\)\s*$")


def _get_package_version(line: str) -> tuple[str | None, str | None]:
    """Parse one line of ``pip freeze``: ``name==version``, ``name===version`` or an editable comment.

    Editable installs appear as ``# Editable ... install ... (name==version)``.

    Args:
        line: the line.

    Returns:
        ``(name, version)``, or ``(None, None)`` when the line holds no package version.
    """
    line = line.strip()
    for expression in (_SRC_VERSION_RE, _EDITABLE_RE):
        match = expression.match(line)
        if match is not None:
            return match.group("name"), match.group("version")
    return None, None


def get_packages(distributions: Iterable[Any] | None = None) -> dict[str, str]:
    """Return the installed distributions as ``{name: version}``, sorted by name (case-insensitive).

    When a distribution is found several times on the path, the first one (the one Python
    imports) wins.

    Args:
        distributions: the distributions (default: :func:`importlib.metadata.distributions`).

    Returns:
        The names (as in the distributions' metadata) and versions.
    """
    found: dict[str, tuple[str, str]] = {}
    for distribution in importlib.metadata.distributions() if distributions is None else distributions:
        name = distribution.metadata["Name"]
        if not name:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        found.setdefault(key, (name, distribution.version))
    return dict(sorted(found.values(), key=lambda item: item[0].lower()))


def _write(path: str, content: str) -> None:
    # Written to a temporary file, then renamed: a reader never sees a half-written file.
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=directory, prefix=".versions-", suffix=".json", delete=False
    ) as output:
        output.write(content)
    os.chmod(output.name, 0o644)
    os.replace(output.name, path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils-genversion",
        usage="%(prog)s [-h] [--output PATH] [GIT_TAG] GIT_HASH",
        description="Write the versions.json file served on {C2C_BASE_PATH}/versions.json.",
    )
    parser.add_argument(
        "--output",
        default="versions.json",
        metavar="PATH",
        help="the file to write (default: ./versions.json)",
    )
    parser.add_argument("revisions", nargs="+", metavar="[GIT_TAG] GIT_HASH", help="the git tag and hash")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``c2cwsgiutils-genversion`` command line.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if len(args.revisions) > 2:  # noqa: PLR2004  # GIT_TAG and GIT_HASH
        parser.error("expected [GIT_TAG] GIT_HASH")
    main_info: dict[str, str] = {"git_hash": args.revisions[-1]}
    if len(args.revisions) == 2:  # noqa: PLR2004  # GIT_TAG and GIT_HASH
        main_info["git_tag"] = args.revisions[0]
    report = {"main": main_info, "packages": get_packages()}
    try:
        _write(args.output, json.dumps(report, indent=2) + "\n")
    except OSError as error:
        parser.exit(1, f"{parser.prog}: error: cannot write {args.output}: {error}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
