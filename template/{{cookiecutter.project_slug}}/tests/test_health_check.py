"""The health check of the service, as a load balancer and a monitoring system call it."""

from __future__ import annotations

import webtest


def test_ping(app: webtest.TestApp) -> None:
    """Level 0 answers 200 without running any check."""
    response = app.get("/c2c/health_check", params={"max_level": "0"})
    assert response.status_code == 200
    assert response.json["failures"] == {}


def test_vital_checks_pass(app: webtest.TestApp) -> None:
    """The level-1 checks (what the load balancer calls) pass, the custom check among them."""
    response = app.get("/c2c/health_check", params={"max_level": "1"})
    assert response.status_code == 200
    assert response.json["failures"] == {}
    # Without the secret the report shows the checks, not their results (C2C_HEALTH_CHECK_PUBLIC_DETAILS).
    assert response.json["successes"]["uptime"]["level"] == 1
