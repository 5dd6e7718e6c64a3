"""The deployment files: the ini files build the application the servers will run."""

from __future__ import annotations

from pathlib import Path

import pytest
import webtest
from pyramid.paster import get_app

PROJECT = Path(__file__).resolve().parent.parent


@pytest.mark.usefixtures("service_env")
@pytest.mark.parametrize("ini", ["production.ini", "development.ini"])
def test_ini_file_builds_the_application(ini: str) -> None:
    """The application of the ini file (pipeline and filters included) answers the health check."""
    app = webtest.TestApp(get_app(f"c2c://{PROJECT / ini}"))
    response = app.get("/c2c/health_check", params={"max_level": "0"})
    assert response.status_code == 200
