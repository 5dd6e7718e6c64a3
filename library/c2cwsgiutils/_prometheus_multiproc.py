"""gunicorn multiprocess mode: the files of ``PROMETHEUS_MULTIPROC_DIR`` stay few and correct.

- At start, the directory is emptied (the ``*.db`` files of a previous run would be summed in).
- When a worker dies, its counter, histogram and summary files are added into one archive file
  per type (``counter_archive.db``...) and removed: totals stay monotonic, while the number of
  files stays bounded however many workers have come and gone. Its gauge files are removed: the
  gauges of dead workers disappear.
- The workers' process and GC metrics are written by a sampler thread of each worker into
  ``liveall`` gauges (one series per live worker, with a ``pid`` label), so a scrape reads files
  and never waits for the workers.

The archive and the scrapes are both in the gunicorn master; a lock keeps a scrape from seeing a
dead worker's values twice (in the archive and in its file) or not at all.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import struct
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["ArchivingCollector", "WorkerSampler", "empty_directory", "mark_process_dead"]

_LOG = logging.getLogger("c2cwsgiutils.prometheus")
_FILES_LOCK = threading.Lock()
_ADDITIVE_TYPES = ("counter", "histogram", "summary")
ARCHIVE = "archive"
_USED = struct.Struct("i")  # the first 4 bytes of a file: how many bytes are used
_HEADER = 8


def empty_directory(path: str) -> int:
    """Remove the ``*.db`` files of ``path`` (other files are left alone); return how many."""
    removed = 0
    with _FILES_LOCK:
        for name in glob.glob(os.path.join(path, "*.db")):
            try:
                os.remove(name)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def _merge_into(archive_path: str, dead_path: str) -> None:
    from prometheus_client import mmap_dict

    mmaped_dict: Any = mmap_dict.MmapedDict  # untyped in prometheus_client
    values = mmaped_dict.read_all_values_from_file(dead_path)
    archive = mmaped_dict(archive_path)
    try:
        for key, value, timestamp, _ in values:
            current, _ = archive.read_value(key)
            archive.write_value(key, current + value, timestamp)
    finally:
        archive.close()


def mark_process_dead(pid: int, path: str) -> None:
    """Archive the additive metrics of the dead process ``pid`` and remove all of its files."""
    with _FILES_LOCK:
        for kind in _ADDITIVE_TYPES:
            dead = os.path.join(path, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            try:
                _merge_into(os.path.join(path, f"{kind}_{ARCHIVE}.db"), dead)
            except Exception:
                _LOG.exception("Could not archive the %s metrics of the process %s", kind, pid)
                continue  # keep the file: its values are still counted
            os.remove(dead)
        for gauge in glob.glob(os.path.join(path, f"gauge_*_{pid}.db")):
            os.remove(gauge)


class _Layout:
    """Where the entries of a multiprocess file are: one ``struct`` reads all its keys and values.

    The files are append-only (an entry keeps its key and its place; new entries come after
    ``used``), so the layout of a file holds while its inode and ``used`` do not change and the
    keys read at those places are the same; the values are read in C, by one ``unpack_from``.
    """

    def __init__(self, inode: int, used: int, data: bytes) -> None:
        from prometheus_client import mmap_dict

        read_all: Any = mmap_dict._read_all_values  # noqa: SLF001  # untyped in prometheus_client
        self.inode = inode
        self.used = used
        keys: list[bytes] = []
        parts = ["=8x"]
        previous = 8
        for key, _, _, position in read_all(data, used):
            encoded = key.encode("utf-8")
            keys.append(encoded)
            parts.append(f"4x{len(encoded)}s{position - previous - 4 - len(encoded)}xdd")
            previous = position + 16
        self.keys = tuple(keys)
        self.struct = struct.Struct("".join(parts))

    def read(self, data: bytes) -> tuple[tuple[bytes, ...], tuple[float, ...], tuple[float, ...]] | None:
        """(keys, values, timestamps) of ``data``, None when the keys are not those of the layout."""
        fields = self.struct.unpack_from(data)
        keys = fields[0::3]
        return None if keys != self.keys else (keys, fields[1::3], fields[2::3])


class ArchivingCollector:
    """prometheus_client's multiprocess collector, reading the files under the archive lock.

    The same families and samples as ``MultiProcessCollector.merge(files, accumulate=True)``; the
    parsing of the files is kept between scrapes (see :class:`_Layout`), the JSON keys parsed once.
    """

    def __init__(self, path: str) -> None:
        """Read the files of ``path``."""
        from prometheus_client import multiprocess

        self._path = path
        collector_class: Any = multiprocess.MultiProcessCollector  # untyped in prometheus_client
        self._collector = collector_class(None, path=path)
        self._accumulate = collector_class._accumulate_metrics  # noqa: SLF001  # its own merge step
        self._layouts: dict[str, _Layout] = {}
        self._keys: dict[bytes, tuple[str, str, dict[str, str], tuple[tuple[str, str], ...], str]] = {}

    def _values(self, name: str) -> tuple[tuple[bytes, ...], tuple[float, ...], tuple[float, ...]]:
        descriptor = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            stat = os.fstat(descriptor)
            data = os.read(descriptor, stat.st_size)
        finally:
            os.close(descriptor)
        used = _USED.unpack_from(data)[0] if len(data) >= _USED.size else 0
        if used <= _HEADER:
            return (), (), ()
        layout = self._layouts.get(name)
        if layout is not None and layout.inode == stat.st_ino and layout.used == used:
            values = layout.read(data)
            if values is not None:
                return values
        layout = _Layout(stat.st_ino, used, data)
        self._layouts[name] = layout
        values = layout.read(data)
        if values is None:  # pragma: no cover  # the layout was made from the same data
            raise RuntimeError(f"Inconsistent file {name}")
        return values

    def _parse_key(self, key: bytes) -> tuple[str, str, dict[str, str], tuple[tuple[str, str], ...], str]:
        parsed = self._keys.get(key)
        if parsed is None:
            metric_name, name, labels, help_text = json.loads(key.decode("utf-8"))
            parsed = (metric_name, name, labels, tuple(sorted(labels.items())), help_text)
            self._keys[key] = parsed
        return parsed

    def _read_metrics(self, files: list[str]) -> dict[str, Any]:
        """``MultiProcessCollector._read_metrics``, with the layouts and the parsed keys kept."""
        from prometheus_client import metrics_core

        metric_class: Any = metrics_core.Metric  # its samples get tuples of labels here, as in its merge
        metrics: dict[str, Any] = {}
        for name in files:
            parts = os.path.basename(name).split("_")
            typ = parts[0]
            try:
                keys, values, timestamps = self._values(name)
            except FileNotFoundError:
                self._layouts.pop(name, None)
                if typ == "gauge" and parts[1].startswith("live"):
                    continue  # removed by mark_process_dead since the glob
                raise
            pid = parts[2][:-3] if typ == "gauge" else ""
            for key, value, timestamp in zip(keys, values, timestamps, strict=True):
                metric_name, sample_name, _, labels_key, help_text = self._parse_key(key)
                metric = metrics.get(metric_name)
                if metric is None:
                    metric = metric_class(metric_name, help_text, typ)
                    metrics[metric_name] = metric
                if typ == "gauge":
                    metric._multiprocess_mode = parts[1]  # noqa: SLF001  # as prometheus_client does
                    metric.add_sample(sample_name, (*labels_key, ("pid", pid)), value, timestamp)
                else:
                    metric.add_sample(sample_name, labels_key, value)
        return metrics

    def collect(self) -> Iterator[Any]:
        """Merge the files of the live workers and the archives."""
        with _FILES_LOCK:
            files = glob.glob(os.path.join(self._path, "*.db"))
            for gone in set(self._layouts) - set(files):
                del self._layouts[gone]
            return iter(list(self._accumulate(self._read_metrics(files), accumulate=True)))


class WorkerSampler:
    """Copy the worker's process and GC metrics into ``liveall`` gauges every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        """Sample every ``interval`` seconds, in a daemon thread started by :meth:`start`."""
        from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector

        self.interval = interval
        private = CollectorRegistry()  # the collectors are read here, never served from this process
        self._sources = (ProcessCollector(registry=private), GCCollector(registry=private))
        self._gauges: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def sample(self) -> None:
        """Write the current values once."""
        from prometheus_client import Gauge

        for source in self._sources:
            for family in source.collect():
                for sample in family.samples:
                    gauge = self._gauges.get(sample.name)
                    if gauge is None:
                        gauge = Gauge(
                            sample.name,
                            family.documentation,
                            tuple(sample.labels),
                            registry=None,
                            multiprocess_mode="liveall",
                        )
                        self._gauges[sample.name] = gauge
                    (gauge.labels(**sample.labels) if sample.labels else gauge).set(sample.value)

    def _run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                _LOG.warning("Could not sample the process metrics", exc_info=True)
            if self._stop.wait(self.interval):
                return

    def start(self) -> None:
        """Start the thread of this process (again after a fork; no second thread otherwise)."""
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="c2c-prometheus-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (for tests)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(5)
        self._thread = None
