"""gunicorn multiprocess mode: the files of ``PROMETHEUS_MULTIPROC_DIR`` stay few and correct.

- At start, the directory is emptied (the ``*.db`` files of a previous run would be summed in).
- When a worker dies, its counter, histogram and summary files (the request path's histograms'
  file of ``_histogram_file`` too) are added into one archive file per type
  (``counter_archive.db``...) and removed: totals stay monotonic, while the number of files stays
  bounded however many workers have come and gone. Its gauge files are removed: the gauges of
  dead workers disappear.
- The workers' process and GC metrics are written by a sampler thread of each worker into
  ``liveall`` gauges (one series per live worker, with a ``pid`` label), so a scrape reads files
  and never waits for the workers.

The archive and the scrapes are both in the gunicorn master; a lock keeps a scrape from seeing a
dead worker's values twice (in the archive and in its file) or not at all.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from c2cwsgiutils import _histogram_file

__all__ = ["ArchivingCollector", "WorkerSampler", "empty_directory", "mark_process_dead"]

_LOG = logging.getLogger("c2cwsgiutils.prometheus")
_FILES_LOCK = threading.Lock()
_ADDITIVE_TYPES = ("counter", "histogram", "summary")
ARCHIVE = "archive"


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
    additive = [(kind, f"{kind}_{pid}.db") for kind in _ADDITIVE_TYPES]
    additive.append(("histogram", _histogram_file.file_name(pid)))  # the request path's histograms
    with _FILES_LOCK:
        for kind, name in additive:
            dead = os.path.join(path, name)
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


class ArchivingCollector:
    """prometheus_client's multiprocess collector, reading the files under the archive lock."""

    def __init__(self, path: str) -> None:
        """Read the files of ``path``."""
        from prometheus_client import multiprocess

        self._path = path
        collector_class: Any = multiprocess.MultiProcessCollector  # untyped in prometheus_client
        self._collector = collector_class(None, path=path)

    def collect(self) -> Iterator[Any]:
        """Merge the files of the live workers and the archives."""
        with _FILES_LOCK:
            files = glob.glob(os.path.join(self._path, "*.db"))
            return iter(list(self._collector.merge(files, accumulate=True)))


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
