"""Metrics as Prometheus scrapes them: summed across gunicorn workers, waitress, stats-db."""

from __future__ import annotations

from typing import Any

import requests
from c2cwsgiutils.acceptance import utils
from conftest import Stack
from prometheus_client.parser import text_string_to_metric_families

HELLO = 'route="hello",method="GET",status="200"'
"""The labels of the ``hello`` route's successful GETs."""


def _value(text: str, sample_name: str, **labels: str) -> float:
    """Sum of the samples of that name whose labels include ``labels`` (0 when there is none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _hello_ten_times(stack: Stack, fresh_session: Any) -> None:
    """10 requests to app2's hello view, then 20 pings, which both of its workers must have answered."""
    for _ in range(10):
        response = fresh_session(stack.url("app2") + "api/hello")
        assert response.status_code == 200
    pids = {fresh_session(stack.url("app2") + "api/ping").json()["pid"] for _ in range(20)}
    assert len(pids) == 2  # both workers served requests


def test_counters_summed_across_workers(stack: Stack, fresh_session: Any) -> None:
    before = stack.scrape("app2")
    hits = _value(before, "acceptance_app_hits_total", method="GET")
    routes = _value(
        before, "c2cwsgiutils_pyramid_routes_seconds_count", route="hello", method="GET", status="200"
    )
    _hello_ten_times(stack, fresh_session)
    after = stack.scrape("app2")
    assert _value(after, "acceptance_app_hits_total", method="GET") == hits + 10
    route_count = _value(
        after, "c2cwsgiutils_pyramid_routes_seconds_count", route="hello", method="GET", status="200"
    )
    assert route_count == routes + 10


def _prometheus(stack: Stack, query: str) -> dict[str, float]:
    """Run an instant query on the Prometheus server: the value of each series, by ``instance``."""
    response = requests.get(
        stack.url("prometheus", 9090) + "api/v1/query", params={"query": query}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return {item["metric"].get("instance", ""): float(item["value"][1]) for item in body["data"]["result"]}


def _prometheus_total(stack: Stack, query: str) -> float:
    """The value of a ``sum(...)`` query on the Prometheus server (0 when no series matches yet)."""
    return sum(_prometheus(stack, query).values())


def test_scraped_by_prometheus(stack: Stack, fresh_session: Any) -> None:
    """The Prometheus server scrapes every application, and sees the sum of app2's two workers."""

    def all_up() -> None:
        assert _prometheus(stack, 'up{job="acceptance"}') == {
            "app:9090": 1,
            "app2:9090": 1,
            "app-waitress:9090": 1,
        }

    utils.retry_timeout(all_up, timeout=60)
    routes = f'sum(c2cwsgiutils_pyramid_routes_seconds_count{{instance="app2:9090",{HELLO}}})'
    hits = 'sum(acceptance_app_hits_total{instance="app2:9090",method="GET"})'
    direct = stack.scrape("app2")
    before_routes = _value(
        direct, "c2cwsgiutils_pyramid_routes_seconds_count", route="hello", method="GET", status="200"
    )
    before_hits = _value(direct, "acceptance_app_hits_total", method="GET")

    def reaches(query: str, expected: float) -> None:
        assert _prometheus_total(stack, query) == expected

    utils.retry_timeout(lambda: reaches(routes, before_routes), timeout=30)  # Prometheus is up to date
    _hello_ten_times(stack, fresh_session)
    utils.retry_timeout(lambda: reaches(routes, before_routes + 10), timeout=30)
    utils.retry_timeout(lambda: reaches(hits, before_hits + 10), timeout=30)


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
