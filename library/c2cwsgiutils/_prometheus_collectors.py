"""Prometheus collectors of :mod:`c2cwsgiutils.prometheus` (process memory, resources, broadcast)."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable, Iterator
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


def _read(path: str) -> bytes:
    """The whole content of ``path`` (a ``/proc`` file): ``os.read`` calls, no buffered file object."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(descriptor, 65536)
        if not data:
            return data
        chunks = [data]
        while chunk := os.read(descriptor, 65536):
            chunks.append(chunk)
        return data if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(descriptor)


def _sum_field(data: bytes, keys: tuple[bytes, ...]) -> float:
    """Sum the ``<key>: <value> kB`` lines of ``keys`` (a line feed, the field, a colon), in bytes."""
    data = b"\n" + data
    total = 0
    for key in keys:
        position = data.find(key)
        while position >= 0:
            start = position + len(key)
            end = data.find(b"\n", start)
            total += int(data[start : end if end >= 0 else len(data)].split()[0]) * 1024
            position = data.find(key, start)
    return float(total)


def _smaps_total(pid: str, field: str) -> float | None:
    """Sum the ``field`` (``Pss``, ``Rss``...; ``Uss`` = private) of a process's memory mappings, in bytes.

    ``smaps_rollup`` (one line per field, summed by the kernel) when the kernel has it, else ``smaps``.
    """
    fields = ("Private_Clean", "Private_Dirty") if field == "Uss" else (field,)
    keys = tuple(b"\n" + name.encode("ascii", "replace") + b":" for name in fields)
    for name in ("smaps_rollup", "smaps"):
        try:
            return _sum_field(_read(f"/proc/{pid}/{name}"), keys)
        except FileNotFoundError:
            continue
        except (PermissionError, ProcessLookupError, OSError, ValueError, IndexError):
            return None
    return None


def _process_name(pid: str) -> str:
    try:
        return _read(f"/proc/{pid}/comm").decode("utf-8", "replace").strip()
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
                pids.extend(_read(f"/proc/{pid}/task/{task}/children").decode("ascii").split())
            except FileNotFoundError:
                if index == 1:  # no children lists in this kernel
                    return [p for p in os.listdir("/proc") if p.isdigit()]
            except (OSError, ValueError):
                continue
    return pids


def _memory(pids: list[str], field: str) -> list[tuple[str, float | None, str]]:
    """(pid, ``field`` total or None, name) of each pid, in order."""
    result: list[tuple[str, float | None, str]] = []
    for pid in pids:
        value = _smaps_total(pid, field)
        result.append((pid, value, "" if value is None else _process_name(pid)))
    return result


_POOL_LOCK = threading.Lock()
_POOL: list[tuple[int, int, concurrent.futures.ThreadPoolExecutor]] = []


def _pool() -> tuple[int, concurrent.futures.ThreadPoolExecutor] | None:
    """(size, threads) of this process (not of the one it was forked from) that read smaps; None on 1 CPU."""
    helpers = min(len(os.sched_getaffinity(0)), 4) - 1
    if helpers < 1:
        return None
    with _POOL_LOCK:
        if not _POOL or _POOL[0][0] != os.getpid():
            executor = concurrent.futures.ThreadPoolExecutor(
                helpers, thread_name_prefix="c2c-prometheus-smaps"
            )
            _POOL[:] = [(os.getpid(), helpers, executor)]
        return _POOL[0][1], _POOL[0][2]


def _memory_parallel(pids: list[str], field: str) -> list[tuple[str, float | None, str]]:
    """:func:`_memory`, split between this thread and helper threads.

    The kernel walks the page tables of a process to write its smaps, which is most of a scrape's
    time; the GIL is released meanwhile, so the processes are read in parallel on several CPUs.
    """
    pool = _pool() if len(pids) > 1 else None
    if pool is None:
        return _memory(pids, field)
    helpers, executor = pool
    parts = min(helpers + 1, len(pids))
    futures = [executor.submit(_memory, pids[index::parts], field) for index in range(1, parts)]
    chunks = [_memory(pids[0::parts], field), *(future.result() for future in futures)]
    result: list[tuple[str, float | None, str]] = [("", None, "")] * len(pids)
    for index, chunk in enumerate(chunks):
        result[index::parts] = chunk
    return result


_Memory = list[tuple[str, float | None, str]]


class _MemorySampler:
    """Reads the memory of the processes every ``interval`` seconds in a daemon thread.

    The first read after a quiet period (or in a new process) is made by the caller; then the
    thread keeps the values fresh while they are asked for, and ends after ``_IDLE_INTERVALS``
    intervals without a caller (a process that is never scraped keeps no thread reading smaps).
    """

    _IDLE_INTERVALS = 12

    def __init__(self, read: Callable[[], _Memory], interval: float) -> None:
        self._read = read
        self.interval = interval
        self._lock = threading.Lock()
        self._values: _Memory = []
        self._last_use = 0.0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def values(self) -> _Memory:
        """The last values, read now when no thread of this process keeps them fresh."""
        with self._lock:
            self._last_use = time.monotonic()
            if self._thread is not None and self._pid == os.getpid():
                return self._values
        values = self._read()
        with self._lock:
            self._values = values
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="c2c-prometheus-memory", daemon=True)
                self._thread.start()
        return values

    def _idle(self) -> bool:
        """Whether nobody asked for the values lately; then the thread ends (under the lock)."""
        with self._lock:
            if time.monotonic() - self._last_use < self.interval * self._IDLE_INTERVALS:
                return False
            self._thread = None
            return True

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            if self._idle():
                return
            try:
                values = self._read()
            except Exception:  # the last values stay; the next interval tries again
                _LOG.warning("Could not read the memory of the processes", exc_info=True)
                continue
            with self._lock:
                self._values = values


class MemoryMapCollector:
    """Gauge ``<prefix>process_smap_<type>_bytes{pid, name}``: the memory of the server's processes.

    By default, the process that collects (the gunicorn master, or the single process) and its
    descendants (the workers): in a container, what runs there; on a shared host, not every
    process of the machine (reading the memory maps of hundreds of processes made a scrape slow).
    Processes that cannot be read (another user's, a process that just ended) are skipped.

    With an ``interval``, a thread reads the memory every ``interval`` seconds while the metric is
    scraped, and a scrape serves the last values (at most ``interval`` seconds old) instead of
    waiting for the kernel to walk the page tables of every process.
    """

    def __init__(self, memory_type: str = "pss", pids: list[str] | None = None, interval: float = 0) -> None:
        """Report ``memory_type`` (``pss``, ``rss``, ``uss``, ``swap``...) of ``pids`` (default: the tree).

        Args:
            memory_type: the field of smaps (``uss``: the private pages).
            pids: the processes to read (default: this process and its descendants).
            interval: seconds between two reads in a thread (0: read at each collect).
        """
        self.memory_type = memory_type
        self.pids = pids
        self._sampler = _MemorySampler(self._read, interval) if interval > 0 else None

    def _read(self) -> _Memory:
        pids = self.pids if self.pids is not None else _process_tree(os.getpid())
        return _memory_parallel(pids, self.memory_type.capitalize())

    def collect(self) -> Iterator[Any]:
        """Read the smaps of the processes (or serve the values of the last sample)."""
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily(
            _metrics.settings().prefix + f"process_smap_{self.memory_type}_bytes",
            f"{self.memory_type.capitalize()} memory of the processes, from /proc/<pid>/smaps",
            labels=("pid", "name"),
        )
        values = self._read() if self._sampler is None else self._sampler.values()
        for pid, value, name in values:
            if value is not None:
                gauge.add_metric([pid, name], value)
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
