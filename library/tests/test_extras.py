"""Optional extras stay optional: the default include works with only the ``standard`` extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from c2cwsgiutils import _extras

_SCRIPT = textwrap.dedent(
    """
    import sys

    BLOCKED = {"redis", "sentry_sdk", "objgraph", "psutil", "jwt", "requests_oauthlib", "alembic",
               "gunicorn", "waitress"}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())

    from c2cwsgiutils import testing
    from c2cwsgiutils.health_check import HealthCheck

    app = testing.make_test_app({"c2c.enable_exception_handling": "1"}, configure=HealthCheck)
    assert app.get("/c2c").status_int == 200
    assert app.get("/c2c/health_check").json == {"successes": {}, "failures": {}}
    assert app.get("/nothing", status=404).json["status"] == 404
    print("ok")
    """
)


def test_default_include_without_optional_extras():
    """Without redis, sentry, debug, oauth2, alembic or webserver extras the library still starts."""
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_missing_extra_names_it():
    """A capability whose extra is missing fails with a message naming the extra."""
    script = _SCRIPT.replace('"gunicorn", "waitress"}', '"gunicorn", "waitress", "cornice"}')
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0
    assert "c2cwsgiutils[standard]" in result.stderr


_LAZY_SCRIPT = textwrap.dedent(
    """
    import sys

    from c2cwsgiutils import testing
    from c2cwsgiutils.health_check import HealthCheck

    app = testing.make_test_app({"c2c.enable_exception_handling": "1"}, configure=HealthCheck)
    assert app.get("/c2c").status_int == 200
    lazy = ("yaml", "itsdangerous", "c2cwsgiutils._github_auth")
    print(sorted(name for name in lazy if name in sys.modules))
    """
)


def test_unused_features_are_not_imported():
    """Without Redis options, secret or GitHub login, their dependencies are not loaded at start-up."""
    result = subprocess.run(
        [sys.executable, "-c", _LAZY_SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _write_module(directory: Path, name: str) -> None:
    # Many container objects, as the import of a real package makes: enough for several collections.
    (directory / f"{name}.py").write_text("DATA = [[index] for index in range(50_000)]\n", encoding="utf-8")


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_require_returns_the_module(module_dir: Path):
    """``require`` imports the module once, then returns the imported one."""
    _write_module(module_dir, "c2c_test_extra_a")
    module = _extras.require("c2c_test_extra_a", "standard", "test")
    assert len(module.DATA) == 50_000
    assert _extras.require("c2c_test_extra_a", "standard", "test") is module
    del sys.modules["c2c_test_extra_a"]
