"""Serve ``_report_app`` with a real gunicorn on 127.0.0.1, for the tests of what its clients see."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests
from _gunicorn import START_TIMEOUT, gunicorn

SECRET = "a-report-secret"
VERSIONS = {"main": {"git_hash": "0123abc", "git_tag": "1.2.3"}, "packages": {"pyramid": "2.0"}}


@contextmanager
def serve(tmp_path: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield the base URL of ``_report_app`` on gunicorn (2 workers), once it answers.

    The environment has the secret, a versions.json file, the JSON error views and production
    mode; ``env`` adds to it (e.g. ``C2C_VERSIONS_PUBLIC``).
    """
    versions = tmp_path / "versions.json"
    versions.write_text(json.dumps(VERSIONS), encoding="utf-8")
    full_env = {
        "C2C_SECRET": SECRET,
        "C2C_VERSIONS_PATH": str(versions),
        "C2C_ENABLE_EXCEPTION_HANDLING": "1",
        "DEVELOPMENT": "0",
        **(env or {}),
    }
    # The "fails" check logs its traceback: the only one the output may hold.
    with gunicorn("_report_app:app", full_env, tmp_path, expected_error="failing on purpose") as url:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if requests.get(url + "/c2c/health_check?max_level=0", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer"
            time.sleep(0.1)
        yield url
