"""Log lines written by a thread of the process, in batches, instead of one system call per record.

Writing a line to stdout or stderr is a system call, and Python releases the GIL around it. On a
gunicorn gthread worker, whose threads take turns on the GIL, each release hands the interpreter to
another thread and back. With the access log's line on every request, that is 2.5 of the ~20
context switches of a request (``/proc/<pid>/task/*/status``, bench/ hello view), and batching the
lines raised the worker's throughput by 4-5 % (bench/README.md).

A :class:`BatchWriter` keeps the lines in memory and a daemon thread writes them, all in one
write, ``interval`` seconds after the first of them: a line waits at most that long (plus the
time of the write itself), and the thread wakes once per batch. Guarantees:

- lines are written whole and in the order they were given, never twice;
- ``flush()`` writes what is pending before it returns (``logging.shutdown`` calls it at exit,
  also in gunicorn workers, which leave through ``sys.exit``);
- memory is bounded: above ``_MAX_PENDING`` characters, the caller writes the batch itself;
- a forked child starts empty (its parent writes the lines it had), with its own thread.

A process that ends without running its exit handlers (``SIGKILL``, ``os._exit``, ``exec``) loses
the lines of its last ``interval``: that is why batching is off unless ``C2C_LOG_FLUSH_INTERVAL``
(or the handler's ``flush_interval``) asks for it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
import weakref
from collections.abc import Callable

__all__ = ["BatchWriter", "report_error"]

# Characters pending above which the writing thread writes the batch itself (back-pressure).
_MAX_PENDING = 1 << 20
_WRITERS: weakref.WeakSet[BatchWriter] = weakref.WeakSet()


class BatchWriter:
    """Write text through ``sink`` from a thread, ``interval`` seconds after the first pending line."""

    def __init__(self, sink: Callable[[str], None], interval: float) -> None:
        """Write with ``sink(text)`` (the text of one or more lines); ``interval`` > 0, in seconds."""
        self._sink = sink
        self._interval = interval
        self._start()
        _WRITERS.add(self)

    def _start(self) -> None:
        """The state of a new writer (also of a forked child's copy): nothing pending, no thread."""
        self._lock = threading.Lock()  # the pending lines
        self._io_lock = threading.Lock()  # a batch being taken and written: keeps batches in order
        self._wake = threading.Event()  # set when a batch starts
        self._stop = threading.Event()  # set by close: ends the thread's waits
        self._pending: list[str] = []
        self._size = 0
        self._thread: threading.Thread | None = None
        self._synchronous = False  # closed, or no thread could start

    def write(self, text: str) -> None:
        """Add ``text`` (whole lines) to the next batch."""
        with self._lock:
            pending = self._pending
            pending.append(text)
            self._size += len(text)
            first = len(pending) == 1
            full = self._size > _MAX_PENDING
        if full or self._synchronous:
            self.flush()
        elif first:
            if self._thread is None and not self._start_thread():
                self.flush()
                return
            self._wake.set()

    def flush(self) -> None:
        """Write the pending lines now (in the calling thread)."""
        with self._io_lock:
            with self._lock:
                pending, self._pending, self._size = self._pending, [], 0
            if pending:
                self._sink("".join(pending))

    def close(self) -> None:
        """Write the pending lines and stop the thread; later writes are synchronous."""
        self._synchronous = True
        self._stop.set()
        self._wake.set()
        self.flush()

    def _start_thread(self) -> bool:
        """Start the thread; False, and writes synchronous from now on, when no thread can start."""
        with self._lock:
            if self._thread is not None:
                return True
            thread = self._thread = threading.Thread(
                target=self._run, name="c2cwsgiutils-log-writer", daemon=True
            )
        try:
            thread.start()
        except RuntimeError:  # the interpreter is shutting down, or the process has too many threads
            self._synchronous = True
            return False
        return True

    def _run(self) -> None:
        wake, stop, interval = self._wake, self._stop, self._interval
        while True:
            wake.wait()
            if stop.wait(interval):  # meanwhile, the next lines join the batch
                return  # closed: close() writes the batch
            # Cleared before the batch is taken: a line added after that sets it again.
            wake.clear()
            try:
                self.flush()
            except Exception:  # the thread must go on: the next batches may be written
                report_error()


def report_error() -> None:
    """Report an error of the thread as ``logging.Handler.handleError`` does (on stderr)."""
    if logging.raiseExceptions and sys.stderr is not None:
        sys.stderr.write("--- Logging error (c2cwsgiutils log writer) ---\n")
        traceback.print_exc(file=sys.stderr)


def _after_fork_in_child() -> None:
    # The lines pending at the fork are the parent's to write; its thread does not exist here.
    for writer in list(_WRITERS):
        writer._start()  # noqa: SLF001  # this module's own class


os.register_at_fork(after_in_child=_after_fork_in_child)
