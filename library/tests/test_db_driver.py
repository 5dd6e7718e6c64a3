"""A plain ``postgresql://`` URL works with whichever driver the service installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

_SCRIPT = """
import sys
sys.modules[{missing!r}] = None  # as if the package were not installed
import sqlalchemy
from c2cwsgiutils import db
engine = db.get_engine({{"sqlalchemy.url": {url!r}}})
with engine.connect() as connection:
    assert connection.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
print(engine.dialect.driver)
"""


@pytest.mark.parametrize(("missing", "driver"), [("psycopg", "psycopg2"), ("psycopg2", "psycopg")])
def test_plain_url_uses_the_installed_driver(postgresql, missing, driver):
    """Without SQLAlchemy's default driver, the other one serves a real PostgreSQL."""
    script = _SCRIPT.format(missing=missing, url=postgresql.url_rw)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [driver]
