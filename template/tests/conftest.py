"""The library's throw-away PostgreSQL server (``library/tests/_postgres.py``), for a baked project."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "library" / "tests"))

pytest_plugins = ["_postgres"]
