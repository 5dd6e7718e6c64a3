"""Optional extras stay optional: the default include works with only the ``standard`` extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
    assert app.get("/c2c/health_check").json["status"] == 200
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
