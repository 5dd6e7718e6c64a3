"""The application's own metrics: a counter in every worker and a collector in gunicorn's master."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

HITS = Counter("acceptance_app_hits", "Calls of the hello service", ["method"])
"""Incremented by the workers; gunicorn's master sums the workers' files (multiprocess mode)."""


class CustomCollector:
    """A host-level collector, registered by ``prometheus.start(registry)`` in gunicorn's master."""

    def collect(self) -> Iterator[Any]:
        """Yield one gauge: ``acceptance_app_custom{source="master"} 42``."""
        gauge = GaugeMetricFamily(
            "acceptance_app_custom", "A value from a custom collector", labels=["source"]
        )
        gauge.add_metric(["master"], 42.0)
        yield gauge
