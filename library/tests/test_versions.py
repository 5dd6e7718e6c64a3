"""At start-up, an installed dependency outside the declared range is refused (too old) or warned about."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from readme_app import gunicorn_command

_APP = Path(__file__).parent / "readme_app"

_BUILD = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(message)s")
from c2cwsgiutils import testing
testing.make_app({})
print("started")
"""


def _installed_as(root: Path, name: str, version: str) -> Path:
    """A directory where ``name`` looks installed in ``version`` (its distribution metadata)."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return root


# What the reference README's Dockerfile sets, for its production.ini.
_ENV = {
    "LOG_TYPE": "console",
    "LOG_LEVEL": "INFO",
    "OTHER_LOG_LEVEL": "WARNING",
    "GUNICORN_LOG_LEVEL": "WARNING",
    "C2CWSGIUTILS_LOG_LEVEL": "WARNING",
}


def _run(*command: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **_ENV, "PYTHONPATH": os.pathsep.join([str(path), str(_APP.parent)])}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_dependency_below_the_floor_is_refused_with_one_line(tmp_path):
    """sentry-sdk 2.5 (below 2.8): the application is not built; the error names the package and floor."""
    result = _run(sys.executable, "-c", _BUILD, path=_installed_as(tmp_path, "sentry-sdk", "2.5.0"))
    assert result.returncode != 0
    assert "started" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("c2cwsgiutils._versions.OutdatedDependencyError: sentry-sdk 2.5.0 is installed")
    assert "c2cwsgiutils needs sentry-sdk" in last
    assert ">=2.8" in last


def test_gunicorn_refuses_to_start_with_a_dependency_below_the_floor(tmp_path):
    """The README-style service on gunicorn stops at start-up, saying which package is too old."""
    result = _run(
        *gunicorn_command("127.0.0.1:0"), path=_installed_as(tmp_path, "prometheus-client", "0.16.0")
    )
    assert result.returncode != 0
    assert "prometheus-client 0.16.0 is installed, c2cwsgiutils needs prometheus-client>=0.17.1" in (
        result.stdout + result.stderr
    )


def test_a_dependency_above_a_known_breaking_major_is_a_warning(tmp_path):
    """sentry-sdk 3 (above the declared bound): one warning, the application starts."""
    result = _run(sys.executable, "-c", _BUILD, path=_installed_as(tmp_path, "sentry-sdk", "3.0.0"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "started"
    warnings = [line for line in result.stdout.splitlines() if "sentry-sdk 3.0.0 is installed" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("WARNING ")
    assert "tested with sentry-sdk<3,>=2.8" in warnings[0]


def test_the_installed_versions_are_accepted(tmp_path):
    """The versions of this environment start without any message about versions."""
    result = _run(sys.executable, "-c", _BUILD, path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "is installed, c2cwsgiutils" not in result.stdout + result.stderr
