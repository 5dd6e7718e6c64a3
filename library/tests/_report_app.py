"""An application that uses the health check report, versions.json and the index page's extension points.

Served by gunicorn (``_report_server.serve``) for the tests of what a client of a real service
sees; configured by the environment (``C2C_SECRET``, ``C2C_VERSIONS_PATH``,
``C2C_VERSIONS_PUBLIC``...), as a service built on the base image is.
"""

from __future__ import annotations

from typing import Any

from c2cwsgiutils import index, testing
from c2cwsgiutils.health_check import HealthCheck, JsonCheckException


def _fails(request: Any) -> None:
    raise JsonCheckException("failing on purpose", {"reason": "test"})


def _configure(config: Any) -> None:
    checks = HealthCheck(config)
    checks.add_custom_check("fine", lambda _request: "fine", level=1)
    checks.add_custom_check("silent", lambda _request: None, level=1)
    checks.add_custom_check("fails", _fails, level=2)
    checks.add_version_check(level=3)


# What an application does to add its own tools to the index page.
index.additional_title = '<h2 id="app-title">Application tools</h2>'
index.additional_noauth.append('<p id="app-public">public tool</p>')
index.additional_auth.append('<p id="app-admin">admin tool</p>')

app = testing.make_app({}, configure=_configure)
