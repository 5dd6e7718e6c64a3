"""gunicorn multiprocess mode: the files of ``PROMETHEUS_MULTIPROC_DIR`` stay few and correct.

- At start, the directory is emptied (the ``*.db`` files of a previous run would be summed in).
- When a worker dies, the values of its counter, histogram and summary files are added to an
  archive kept in the memory of the gunicorn master, and the files are removed: totals stay
  monotonic, while the number of files stays bounded however many workers have come and gone.
  Its gauge files are removed: the gauges of dead workers disappear. The files are read with
  prometheus_client's own multiprocess collector (``MultiProcessCollector.merge``), never parsed
  here, so its file format is its own business from one release to the next. A restarted
  master starts from an emptied directory, so an archive in memory loses nothing that a file
  would have kept.
- Files of processes that are gone are archived at each scrape too (:func:`archive_dead`): with a
  ``gunicorn.conf.py`` whose ``child_exit`` hook only calls prometheus_client's
  ``mark_process_dead`` (the reference README's), the directory stays bounded all the same.
- The workers' process and GC metrics are written by a sampler thread of each worker into
  ``liveall`` gauges (one series per live worker, with a ``pid`` label), so a scrape reads files
  and never waits for the workers.

The archive and the scrapes are both in the gunicorn master; a lock keeps a scrape from seeing a
dead worker's values twice (in the archive and in its file) or not at all.
"""

from __future__ import annotations

import collections
import glob
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["ArchivingCollector", "WorkerSampler", "archive_dead", "empty_directory", "mark_process_dead"]

_LOG = logging.getLogger("c2cwsgiutils.prometheus")
_FILES_LOCK = threading.Lock()
# Dead processes whose files wait to be archived: (pid, directory).
_PENDING: collections.deque[tuple[int, str]] = collections.deque()
_ADDITIVE_TYPES = ("counter", "histogram", "summary")


def empty_directory(path: str) -> int:
    """Remove the ``*.db`` files of ``path`` (other files are left alone); return how many."""
    removed = 0
    with _FILES_LOCK:
        _ARCHIVES.pop(path, None)
        for name in glob.glob(os.path.join(path, "*.db")):
            try:
                os.remove(name)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


class _Archive:
    """Accumulated values of dead processes, by family: ``name -> (type, documentation, samples)``."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}

    def add(self, metrics: Iterable[Any]) -> None:
        for metric in metrics:
            if metric.type == "gauge":
                continue  # the gauges of a dead process disappear with it
            _, _, samples = self.families.setdefault(metric.name, (metric.type, metric.documentation, {}))
            for sample in metric.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = samples.get(key, 0.0) + sample.value


# The archive of each directory, in the process that scrapes it (the gunicorn master).
_ARCHIVES: dict[str, _Archive] = {}


def _merge(files: list[str]) -> list[Any]:
    from prometheus_client import multiprocess

    collector: Any = multiprocess.MultiProcessCollector  # untyped in prometheus_client
    return list(collector.merge(files, accumulate=True))


def mark_process_dead(pid: int, path: str) -> None:
    """Archive the additive metrics of the dead process ``pid`` and remove all of its files.

    Never waits: gunicorn 23 calls ``child_exit`` from its SIGCHLD handler, which can interrupt
    this very function in the same thread when two workers exit together (a lock taken again
    there would never be released: the master would spawn no more workers). When the lock is
    taken, the process is left to its holder, which archives the pending ones before releasing
    it, or to the next scrape (:func:`archive_dead`).
    """
    _PENDING.append((pid, path))
    if _FILES_LOCK.acquire(blocking=False):
        try:
            _archive_pending()
        finally:
            _FILES_LOCK.release()


def _archive_pending() -> None:
    """Archive the pending dead processes (with ``_FILES_LOCK`` held)."""
    while _PENDING:
        pid, path = _PENDING.popleft()
        _mark_process_dead(pid, path)


def _mark_process_dead(pid: int, path: str) -> None:
    additive = [os.path.join(path, f"{kind}_{pid}.db") for kind in _ADDITIVE_TYPES]
    dead = [name for name in additive if os.path.exists(name)]
    if dead:
        try:
            metrics = _merge(dead)
        except Exception:
            _LOG.exception("Could not archive the metrics of the process %s", pid)
            return  # keep the files: their values are still counted
        _ARCHIVES.setdefault(path, _Archive()).add(metrics)
        for name in dead:
            os.remove(name)
    for gauge in glob.glob(os.path.join(path, f"gauge_*_{pid}.db")):
        os.remove(gauge)


_PID_FILE = re.compile(r"^[a-z]+(?:_[a-z]+)?_(\d+)(?:_[a-z0-9]+)?\.db$")


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def archive_dead(path: str) -> int:
    """Archive the files of every process of ``path`` that no longer exists; return how many processes."""
    with _FILES_LOCK:
        pids = {int(match.group(1)) for name in os.listdir(path) if (match := _PID_FILE.search(name))}
        dead = sorted(pid for pid in pids if pid != os.getpid() and not _is_alive(pid))
        for pid in dead:
            _mark_process_dead(pid, path)
        _archive_pending()
        return len(dead)


def _with_archive(live: list[Any], archive: _Archive | None) -> Iterator[Any]:
    if archive is None or not archive.families:
        return iter(live)
    result = []
    for metric in live:
        archived = archive.families.get(metric.name)
        if archived is None or archived[0] != metric.type:
            result.append(metric)
            continue
        # The live samples plus the archived ones, those of the same series added up.
        values = dict(archived[2])
        for sample in metric.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            values[key] = values.get(key, 0.0) + sample.value
        result.append(_metric(metric.name, metric.documentation, metric.type, values))
    live_names = {metric.name for metric in live}
    for name, (kind, documentation, values) in archive.families.items():
        if name not in live_names:
            result.append(_metric(name, documentation, kind, values))
    return iter(result)


def _metric(name: str, documentation: str, kind: str, values: dict[tuple[str, Any], float]) -> Any:
    from prometheus_client.metrics_core import Metric

    metric = Metric(name, documentation, kind)
    for (sample_name, labels), value in values.items():
        metric.add_sample(sample_name, dict(labels), value)
    return metric


class ArchivingCollector:
    """prometheus_client's multiprocess collector, plus the archive of the dead processes."""

    def __init__(self, path: str) -> None:
        """Read the files of ``path``."""
        self._path = path

    def collect(self) -> Iterator[Any]:
        """Merge the files of the live workers and the archive."""
        archive_dead(self._path)
        with _FILES_LOCK:
            try:
                files = glob.glob(os.path.join(self._path, "*.db"))
                return _with_archive(_merge(files), _ARCHIVES.get(self._path))
            finally:
                _archive_pending()  # the workers that died while the files were read


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
