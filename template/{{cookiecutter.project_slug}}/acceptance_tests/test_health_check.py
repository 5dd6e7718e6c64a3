"""The health check of the running stack, every level."""

from __future__ import annotations

import requests


def test_all_checks_pass(base_url: str) -> None:
    """Every check passes on the running stack, the optional ones (level 2) included."""
    response = requests.get(f"{base_url}/c2c/health_check", params={"max_level": "2"}, timeout=30)
    assert response.json()["failures"] == {}
    assert response.status_code == 200
    assert "uptime" in response.json()["successes"]
