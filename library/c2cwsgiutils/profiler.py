"""Profile a block or a function with :mod:`cProfile` and dump the statistics to a file.

As a decorator or a context manager::

    @Profile("/tmp/my_function.prof")
    def my_function(): ...

    with Profile("/tmp/block.prof", print_number=20):
        ...

Open the file with SnakeViz (``snakeviz /tmp/block.prof``) or :mod:`pstats`.

The same instance may be used by several threads at once (each thread has its own profiler;
the last one to finish writes the file) and recursively (only the outermost call is profiled).

.. versionadded:: 6.0
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import pstats
import sys
import tempfile
import threading
from types import TracebackType
from typing import Self

__all__ = ["Profile"]


class Profile(contextlib.ContextDecorator):
    """Context manager and decorator that profiles the code it wraps.

    Args:
        path: the file the statistics are dumped to (``pstats`` format), on exit.
        print_number: if positive, also print that many functions, sorted by cumulative time,
            on the standard output.
    """

    def __init__(self, path: str, print_number: int = 0) -> None:
        """Prepare the profiler."""
        self.path = path
        self.print_number = print_number
        self._local = threading.local()

    def __enter__(self) -> Self:
        """Start profiling (the current thread)."""
        depth: int = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        if depth == 0:
            profiler = cProfile.Profile()
            self._local.profiler = profiler
            profiler.enable()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop profiling and write the statistics (when leaving the outermost block)."""
        self._local.depth -= 1
        if self._local.depth > 0:
            return
        profiler: cProfile.Profile = self._local.profiler
        profiler.disable()
        del self._local.profiler
        self._dump(profiler)
        if self.print_number > 0:
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(self.print_number)

    def _dump(self, profiler: cProfile.Profile) -> None:
        # Written next to the target, then renamed, so that a reader never sees a partial file.
        directory = os.path.dirname(os.path.abspath(self.path))
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".profile-", suffix=".prof")
        os.close(descriptor)
        try:
            profiler.dump_stats(temporary)
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise

    def __repr__(self) -> str:
        """Return ``Profile('<path>', print_number=<n>)``."""
        return f"Profile({self.path!r}, print_number={self.print_number})"
