"""Metrics as Prometheus scrapes them: summed across gunicorn workers, waitress, stats-db."""

from __future__ import annotations

from typing import Any

from c2cwsgiutils.acceptance import utils
from conftest import Stack
from prometheus_client.parser import text_string_to_metric_families


def _value(text: str, sample_name: str, **labels: str) -> float:
    """Sum of the samples of that name whose labels include ``labels`` (0 when there is none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_counters_summed_across_workers(stack: Stack, fresh_session: Any) -> None:
    before = stack.scrape("app2")
    hits = _value(before, "acceptance_app_hits_total", method="GET")
    routes = _value(
        before, "c2cwsgiutils_pyramid_routes_seconds_count", route="hello", method="GET", status="200"
    )
    pids = set()
    for _ in range(10):
        response = fresh_session(stack.url("app2") + "api/hello")
        assert response.status_code == 200
    for _ in range(20):
        pids.add(fresh_session(stack.url("app2") + "api/ping").json()["pid"])
    after = stack.scrape("app2")
    assert _value(after, "acceptance_app_hits_total", method="GET") == hits + 10
    route_count = _value(
        after, "c2cwsgiutils_pyramid_routes_seconds_count", route="hello", method="GET", status="200"
    )
    assert route_count == routes + 10
    assert len(pids) == 2  # both workers served requests


def test_custom_collector_and_catalogue(stack: Stack) -> None:
    text = stack.scrape("app")
    assert _value(text, "acceptance_app_custom", source="master") == 42
    assert _value(text, "c2cwsgiutils_version", git_hash="0123456789abcdef0123456789abcdef01234567") >= 1
    assert "c2cwsgiutils_process_smap_pss_bytes" in text
    stack.connection("app").get_json("c2c/health_check", params={"max_level": "2"}, cors=False)
    text = stack.scrape("app")
    assert "c2cwsgiutils_health_check_db_seconds_count" in text
    assert _value(text, "c2cwsgiutils_alembic_version", version="4a8b3c2d1e0f") >= 1
    assert "c2cwsgiutils_database_seconds_count" in text
    assert "c2cwsgiutils_redis_seconds_count" in text


def test_waitress_single_process_metrics(stack: Stack) -> None:
    waitress = stack.connection("app-waitress")
    before = _value(stack.scrape("app-waitress"), "acceptance_app_hits_total", method="GET")
    waitress.get_json("api/hello")
    text = stack.scrape("app-waitress")
    assert _value(text, "acceptance_app_hits_total", method="GET") == before + 1
    assert "c2cwsgiutils_pyramid_routes_seconds_count" in text
    assert "process_resident_memory_bytes" in text


def test_stats_db(stack: Stack) -> None:
    def scraped() -> str:
        return stack.scrape("stats-db")

    text = utils.retry_timeout(scraped, timeout=60)
    assert _value(text, "c2cwsgiutils_database_table_count", schema="public", table="hello") >= 1
    assert _value(text, "c2cwsgiutils_database_table_size", schema="public", table="hello") > 0
