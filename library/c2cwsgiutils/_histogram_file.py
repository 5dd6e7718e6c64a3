"""The request path's histogram observations, written straight into a multiprocess file of the process.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) an observation of a prometheus_client histogram
is two locked writes to the process's mapped file, each with a ``getpid`` system call and four
layers of calls: ~17 k instructions, and the stats tween observes two histograms on every request.
Its observations go through :class:`HistogramFile` instead: one lock per observation, the offsets
of the series' values known, two ``struct.pack_into`` in the mapping.

The file is the process's own ``histogram_<pid>_c2c.db`` in the multiprocess directory, written in
the format of prometheus_client's files (a used-size header, then entries of a JSON key, padded,
a value and a timestamp), so that prometheus_client's collector sums it with the other files,
and the archive of a dead worker (``_prometheus_multiproc``) takes it in too. Used in the gunicorn
workers (:func:`use_in_this_process`), whose metrics the master reads from the files.
:func:`for_process` checks once that the installed prometheus_client reads back what this module
writes; when it does not (or in another process), the caller uses prometheus_client's histograms.

A forked child starts a file of its own (``os.register_at_fork``), as prometheus_client does.
"""

from __future__ import annotations

import bisect
import logging
import mmap
import os
import struct
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "HistogramFile",
    "Series",
    "file_name",
    "for_process",
    "format_is_read_back",
    "use_in_this_process",
]

_HEADER = struct.Struct("<i")  # bytes used, at offset 0; the entries start at offset 8
_VALUE = struct.Struct("<dd")  # value, timestamp
_FIRST = 8
_INITIAL_SIZE = 1 << 16
_SUFFIX = "c2c"
_LOG = logging.getLogger("c2cwsgiutils.prometheus")


def file_name(pid: int) -> str:
    """Name of the file of the process ``pid`` (prometheus_client reads the type from its prefix)."""
    return f"histogram_{pid}_{_SUFFIX}.db"


def _entry(key: str) -> bytes:
    """An entry of prometheus_client's format: length, key padded to 8 bytes, zero value and time."""
    encoded = key.encode()
    padding = 8 - (len(encoded) + 4) % 8
    return _HEADER.pack(len(encoded)) + encoded + b" " * padding + _VALUE.pack(0.0, 0.0)


def _go_float(value: float) -> str:
    from prometheus_client import utils

    to_text: Any = utils.floatToGoString  # untyped in prometheus_client
    return str(to_text(value))


class Series:
    """One labelled histogram: ``observe(amount)`` as a prometheus_client histogram child."""

    __slots__ = ("_bounds", "_counts", "_file", "_generation", "_keys", "_positions", "_sum")

    def __init__(self, file: HistogramFile, keys: tuple[str, ...], bounds: tuple[float, ...]) -> None:
        """A series of ``file``: ``keys`` are the sum's then the buckets' (one per bound)."""
        self._file = file
        self._keys = keys
        self._bounds = bounds
        self._generation = -1
        self._positions: list[int] = []
        self._sum = 0.0
        self._counts = [0.0] * len(bounds)

    def observe(self, amount: float) -> None:
        """Add ``amount`` to the sum and one to its bucket (the first bound not below it)."""
        index = bisect.bisect_left(self._bounds, amount)
        file = self._file
        with file.lock:
            if self._generation != file.generation:
                self._start()
            self._sum += amount
            self._counts[index] += 1.0
            data = file.data
            _VALUE.pack_into(data, self._positions[0], self._sum, 0.0)
            _VALUE.pack_into(data, self._positions[index + 1], self._counts[index], 0.0)

    def _start(self) -> None:
        """Place the series in the file (the first time, or in a new process). Lock held."""
        file = self._file
        self._positions = [file.position(key) for key in self._keys]
        self._generation = file.generation
        self._sum = 0.0
        self._counts = [0.0] * len(self._bounds)


class HistogramFile:
    """The ``histogram_<pid>_c2c.db`` file of the process in a multiprocess directory."""

    def __init__(self, directory: str) -> None:
        """Write into ``directory``; the file is created on the first observation."""
        self._directory = directory
        self.lock = threading.Lock()
        self.generation = 0
        self.data: Any = None
        self._fd = -1
        self._size = 0
        self._used = 0
        self._positions: dict[str, int] = {}
        self._series: dict[tuple[str, ...], Series] = {}
        _FILES.add(self)

    def series(
        self,
        name: str,
        documentation: str,
        labels: Mapping[str, str],
        bounds: Sequence[float],
    ) -> Series:
        """The series of the histogram ``name`` with ``labels``, bucketed by ``bounds`` (ending +Inf)."""
        bounds = tuple(float(bound) for bound in bounds)
        if not bounds or bounds[-1] != float("inf") or list(bounds) != sorted(bounds):
            msg = f"The bounds of {name} must be sorted and end with +Inf: {bounds}"
            raise ValueError(msg)

        from prometheus_client import mmap_dict

        def key(sample: str, sample_labels: Mapping[str, str]) -> str:
            # prometheus_client's own key: the same series as its histogram's in the other files.
            return str(
                mmap_dict.mmap_key(
                    name, sample, list(sample_labels), list(sample_labels.values()), documentation
                )
            )

        keys = (
            key(name + "_sum", labels),
            *(key(name + "_bucket", {**labels, "le": _go_float(bound)}) for bound in bounds),
        )
        with self.lock:
            # One object per series: two would each write their own totals at the same offsets.
            series = self._series.get(keys)
            if series is None:
                series = self._series[keys] = Series(self, keys, bounds)
                series._start()  # noqa: SLF001  # placed now: its buckets are in the file from now on
        return series

    def position(self, key: str) -> int:
        """Offset of the value of ``key``, its entry added when new. Lock held."""
        position = self._positions.get(key)
        if position is None:
            if self.data is None:
                self._open()
            entry = _entry(key)
            end = self._used + len(entry)
            if end > self._size:
                self._grow(end)
            self.data[self._used : end] = entry
            # The size after the entry is written: a reader never sees half an entry.
            _HEADER.pack_into(self.data, 0, end)
            self._used = end
            position = self._positions[key] = end - _VALUE.size
        return position

    def _open(self) -> None:
        path = os.path.join(self._directory, file_name(os.getpid()))
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._size = max(os.fstat(self._fd).st_size, _INITIAL_SIZE)
        os.ftruncate(self._fd, self._size)
        self.data = mmap.mmap(self._fd, self._size)
        self._used = _HEADER.unpack_from(self.data, 0)[0]
        if self._used < _FIRST:  # a new file (a reused pid's file was archived and removed)
            self._used = _FIRST
            _HEADER.pack_into(self.data, 0, self._used)

    def _grow(self, needed: int) -> None:
        while self._size < needed:
            self._size *= 2
        os.ftruncate(self._fd, self._size)
        self.data.close()
        self.data = mmap.mmap(self._fd, self._size)

    def _after_fork(self) -> None:
        """In a forked child: a new lock, and a file of its own when it first observes."""
        self.lock = threading.Lock()
        self.generation += 1
        if self.data is not None:
            self.data.close()
            os.close(self._fd)
        self.data = None
        self._fd = -1
        self._used = 0
        self._positions = {}


_FILES: weakref.WeakSet[HistogramFile] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for file in list(_FILES):
        file._after_fork()  # noqa: SLF001  # the module's own hook


os.register_at_fork(after_in_child=_after_fork_in_child)

_PROCESS_FILES: dict[str, HistogramFile | None] = {}
_PROCESS_LOCK = threading.Lock()
_READ_BACK: list[bool] = []  # the result of the check, once known
_IN_USE: list[bool] = []  # [True] once use_in_this_process was called


def _reads_back() -> bool:
    """Whether prometheus_client's collector reads what this module writes."""
    import tempfile

    from prometheus_client import CollectorRegistry, multiprocess

    with tempfile.TemporaryDirectory(prefix="c2c-histogram-") as directory:
        file = HistogramFile(directory)
        series = file.series("c2c_check_seconds", "Check", {"a": "b"}, (0.5, float("inf")))
        series.observe(0.25)
        series.observe(2.0)
        series.observe(0.5)
        file.data.close()
        os.close(file._fd)  # noqa: SLF001  # its own file
        registry = CollectorRegistry()
        collector: Any = multiprocess.MultiProcessCollector  # untyped in prometheus_client
        collector(registry, path=directory)
        found = {
            (sample.name, sample.labels.get("le")): sample.value
            for metric in registry.collect()
            for sample in metric.samples
        }
    return found == {
        ("c2c_check_seconds_sum", None): 2.75,
        ("c2c_check_seconds_bucket", "0.5"): 2.0,
        ("c2c_check_seconds_bucket", "+Inf"): 3.0,
        ("c2c_check_seconds_count", None): 3.0,
    }


def format_is_read_back() -> bool:
    """Whether prometheus_client reads what this module writes: checked once per process.

    The gunicorn master checks it when it starts serving the metrics (``prometheus.start``): the
    workers inherit the answer instead of writing a file of their own on their first request.
    """
    with _PROCESS_LOCK:
        if not _READ_BACK:
            try:
                readable = _reads_back()
            except Exception:  # any failure means: use prometheus_client's histograms
                _LOG.warning("Request metrics through prometheus_client: format check failed", exc_info=True)
                readable = False
            else:
                if not readable:
                    _LOG.warning("Request metrics through prometheus_client: its file format changed")
            _READ_BACK.append(readable)
        return _READ_BACK[0]


def use_in_this_process() -> None:
    """The metrics of this process are read from the multiprocess files: it may write its own.

    Called in a gunicorn worker (``prometheus.cleanup``, gunicorn's ``post_fork``): its master
    serves the files. A single process (waitress) serves its registry, where the series of this
    file would not be: it keeps prometheus_client's histograms even with
    ``PROMETHEUS_MULTIPROC_DIR`` set (the image sets it).
    """
    _IN_USE[:] = [True]


def for_process() -> HistogramFile | None:
    """The process's file in ``PROMETHEUS_MULTIPROC_DIR``, or ``None`` when not in multiprocess mode.

    Also ``None`` when the installed prometheus_client would not read the file back, and in a
    process that did not call :func:`use_in_this_process`.
    """
    from prometheus_client import values

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not _IN_USE or not directory or not getattr(values.ValueClass, "_multiprocess", False):
        return None
    readable = format_is_read_back()
    with _PROCESS_LOCK:
        if directory not in _PROCESS_FILES:
            _PROCESS_FILES[directory] = HistogramFile(directory) if readable else None
        return _PROCESS_FILES[directory]
