"""Prometheus collectors of :mod:`c2cwsgiutils.prometheus` (process memory, resources, broadcast)."""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Iterable, Iterator
from typing import Any, TypedDict

from c2cwsgiutils import _metrics

__all__ = [
    "MULTI_PROCESS_COLLECTOR_BROADCAST_CHANNELS",
    "MemoryInfoCollector",
    "MemoryMapCollector",
    "MultiProcessCustomCollector",
    "ResourceCollector",
    "SerializedMetric",
    "SerializedSample",
    "serialize_collected_data",
]

_LOG = logging.getLogger("c2cwsgiutils.prometheus")

MULTI_PROCESS_COLLECTOR_BROADCAST_CHANNELS: list[str] = []
"""Broadcast channels asked for metrics on each scrape (:class:`MultiProcessCustomCollector`).

Empty by default: the workers' process and GC metrics go through the multiprocess files, so a
scrape never waits for the workers. An application appends a channel whose subscribers answer
with :func:`serialize_collected_data` of a collector.
"""


class SerializedSample(TypedDict):
    """A sample sent by a worker through a broadcast."""

    name: str
    labels: dict[str, str]
    value: float


class SerializedMetric(TypedDict):
    """A metric family sent by a worker through a broadcast."""

    type: str
    args: dict[str, Any]
    samples: list[SerializedSample]


def serialize_collected_data(collector: Any) -> list[SerializedMetric]:
    """Serialise the gauge and counter families of ``collector``; each sample gets a ``pid`` label."""
    pid = str(os.getpid())
    result: list[SerializedMetric] = []
    for family in collector.collect():
        if family.type not in ("gauge", "counter"):
            continue
        result.append(
            {
                "type": family.type,
                "args": {"name": family.name, "documentation": family.documentation, "unit": family.unit},
                "samples": [
                    {"name": sample.name, "labels": {**sample.labels, "pid": pid}, "value": sample.value}
                    for sample in family.samples
                ],
            }
        )
    return result


def _families(answers: Iterable[Any]) -> Iterator[Any]:
    from prometheus_client.metrics_core import Metric

    families: dict[str, Any] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for answer in answers:
        if not isinstance(answer, list):  # a worker that did not answer, or failed
            continue
        for serialized in answer:
            args = serialized["args"]
            family = families.get(args["name"])
            if family is None:
                family = Metric(
                    args["name"], args.get("documentation", ""), serialized["type"], args.get("unit", "")
                )
                families[args["name"]] = family
            for sample in serialized["samples"]:
                key = (sample["name"], tuple(sorted(sample["labels"].items())))
                if key in seen:  # the same process answered twice
                    continue
                seen.add(key)
                family.add_sample(sample["name"], sample["labels"], sample["value"])
    return iter(families.values())


class MultiProcessCustomCollector:
    """Ask the workers, by broadcast, for the metrics of the broadcast channels.

    The channels are those of :data:`MULTI_PROCESS_COLLECTOR_BROADCAST_CHANNELS`.
    """

    def __init__(self, timeout: float = 10) -> None:
        """Wait at most ``timeout`` seconds for the answers of each channel."""
        self.timeout = timeout

    def collect(self) -> Iterator[Any]:
        """Broadcast each channel and rebuild the metric families from the answers."""
        channels = list(MULTI_PROCESS_COLLECTOR_BROADCAST_CHANNELS)
        if not channels:
            return iter(())
        from c2cwsgiutils import broadcast

        answers: list[Any] = []
        for channel in channels:
            try:
                answers.extend(broadcast.broadcast(channel, expect_answers=True, timeout=self.timeout) or [])
            except Exception:  # Redis down: the other metrics are still served
                _LOG.warning("Could not collect the metrics of the channel %s", channel, exc_info=True)
        return _families(answers)


def _smaps_total(pid: str, field: str) -> float | None:
    """Sum the ``field`` (``Pss``, ``Rss``...; ``Uss`` = private) of a process's memory mappings, in bytes."""
    fields = ("Private_Clean", "Private_Dirty") if field == "Uss" else (field,)
    for name in ("smaps_rollup", "smaps"):
        try:
            with open(f"/proc/{pid}/{name}", encoding="ascii", errors="replace") as smaps:
                total = 0
                for line in smaps:
                    key, _, rest = line.partition(":")
                    if key in fields:
                        total += int(rest.split()[0]) * 1024
                return float(total)
        except FileNotFoundError:
            continue
        except (PermissionError, ProcessLookupError, OSError, ValueError, IndexError):
            return None
    return None


def _process_name(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as comm:
            return comm.read().strip()
    except OSError:
        return ""


def _process_tree(root: int) -> list[str]:
    """The pid of ``root`` and of its descendants, from ``/proc/<pid>/task/<tid>/children``.

    Falls back to every process when the kernel does not publish the children lists.
    """
    pids = [str(root)]
    index = 0
    while index < len(pids):
        pid = pids[index]
        index += 1
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                    pids.extend(children.read().split())
            except FileNotFoundError:
                if index == 1:  # no children lists in this kernel
                    return [p for p in os.listdir("/proc") if p.isdigit()]
            except OSError:
                continue
    return pids


class MemoryMapCollector:
    """Gauge ``<prefix>process_smap_<type>_bytes{pid, name}``: the memory of the server's processes.

    By default, the process that collects (the gunicorn master, or the single process) and its
    descendants (the workers): in a container, what runs there; on a shared host, not every
    process of the machine (reading the memory maps of hundreds of processes made a scrape slow).
    Processes that cannot be read (another user's, a process that just ended) are skipped.
    """

    def __init__(self, memory_type: str = "pss", pids: list[str] | None = None) -> None:
        """Report ``memory_type`` (``pss``, ``rss``, ``uss``, ``swap``...) of ``pids`` (default: the tree)."""
        self.memory_type = memory_type
        self.pids = pids

    def collect(self) -> Iterator[Any]:
        """Read the smaps of the processes."""
        from prometheus_client.core import GaugeMetricFamily

        field = self.memory_type.capitalize()
        gauge = GaugeMetricFamily(
            _metrics.settings().prefix + f"process_smap_{self.memory_type}_bytes",
            f"{field} memory of the processes, from /proc/<pid>/smaps",
            labels=("pid", "name"),
        )
        pids = self.pids if self.pids is not None else _process_tree(os.getpid())
        for pid in pids:
            value = _smaps_total(pid, field)
            if value is not None:
                gauge.add_metric([pid, _process_name(pid)], value)
        yield gauge


_RUSAGE_FIELDS = (
    "ru_utime",
    "ru_stime",
    "ru_maxrss",
    "ru_minflt",
    "ru_majflt",
    "ru_inblock",
    "ru_oublock",
    "ru_nvcsw",
    "ru_nivcsw",
)


class ResourceCollector:
    """Gauge ``<prefix>python_resource{name}``: the process's ``getrusage`` values."""

    def collect(self) -> Iterator[Any]:
        """Read getrusage."""
        from prometheus_client.core import GaugeMetricFamily

        usage = resource.getrusage(resource.RUSAGE_SELF)
        gauge = GaugeMetricFamily(
            _metrics.settings().prefix + "python_resource", "Resource usage of the process", labels=("name",)
        )
        for name in _RUSAGE_FIELDS:
            gauge.add_metric([name], float(getattr(usage, name)))
        yield gauge


class MemoryInfoCollector:
    """Gauge ``<prefix>python_memory_info{name}``: ``psutil``'s memory information of the process."""

    def collect(self) -> Iterator[Any]:
        """Read psutil's memory_info."""
        import psutil
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily(
            _metrics.settings().prefix + "python_memory_info",
            "Memory of the process (psutil)",
            labels=("name",),
        )
        for name, value in psutil.Process().memory_info()._asdict().items():
            gauge.add_metric([name], float(value))
        yield gauge
