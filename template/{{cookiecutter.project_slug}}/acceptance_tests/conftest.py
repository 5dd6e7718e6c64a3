"""Fixtures of the acceptance tests: the service started by ``docker compose`` (``make acceptance``).

They use plain ``requests`` for now; ``c2cwsgiutils.acceptance`` (retries while the stack starts,
image comparison) will replace the helpers below once it exists.
"""

from __future__ import annotations

import os
import time

import pytest
import requests

BASE_URL = os.environ.get("BASE_URL", "http://localhost:8080").rstrip("/")
START_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="session")
def base_url() -> str:
    """Return the URL of the service, once its health check answers (at most a minute)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            if requests.get(f"{BASE_URL}/c2c/health_check", timeout=5).status_code == 200:
                return BASE_URL
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{BASE_URL} did not answer its health check within {START_TIMEOUT_SECONDS} s")
        time.sleep(1)
