"""Fixtures of the template's tests: an isolated home, and the library's throw-away PostgreSQL server.

The server (``library/tests/_postgres.py``) runs a baked project's unit tests on PostgreSQL.
"""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "library" / "tests"))

pytest_plugins = ["_postgres"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep cookiecutter's replay files, cruft's clones and git's configuration out of the real home."""
    home = tmp_path / "home"
    home.mkdir()
    config = home / "cookiecutterrc.yaml"
    config.write_text(
        json.dumps({"cookiecutters_dir": str(home / "cookiecutters"), "replay_dir": str(home / "replay")}),
        encoding="utf-8",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Template Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "template-test@example.com")
    # The generated tests use SQLite unless SQLALCHEMY_URL says otherwise.
    monkeypatch.delenv("SQLALCHEMY_URL", raising=False)
