from __future__ import annotations

import pstats
import threading

import pytest

from c2cwsgiutils import profile, profiler


def _work(count):
    return sum(i * i for i in range(count))


def _functions(path):
    return {name for _file, _line, name in pstats.Stats(str(path)).stats}


def test_context_manager_dumps_stats(tmp_path, capsys):
    """The block is profiled and the statistics are written to the file, silently by default."""
    path = tmp_path / "block.prof"
    with profiler.Profile(str(path)) as prof:
        _work(1000)
    assert isinstance(prof, profiler.Profile)
    assert "_work" in _functions(path)
    assert capsys.readouterr().out == ""
    assert [p.name for p in tmp_path.iterdir()] == ["block.prof"]


def test_decorator_keeps_result_and_dumps_stats(tmp_path):
    """A decorated function returns its result, and each call writes the statistics."""
    path = tmp_path / "function.prof"

    @profiler.Profile(str(path))
    def compute(count):
        return _work(count)

    assert compute(10) == 285
    assert "compute" in _functions(path)


def test_print_number_prints_top_functions(tmp_path, capsys):
    """With ``print_number``, the top functions by cumulative time are printed."""
    with profiler.Profile(str(tmp_path / "p.prof"), print_number=3):
        _work(1000)
    out = capsys.readouterr().out
    assert "cumulative" in out
    assert "List reduced from" in out
    assert "to 3 due to restriction" in out


def test_exception_propagates_and_stats_are_written(tmp_path):
    """An exception in the block is not swallowed, and what ran is still written."""
    path = tmp_path / "error.prof"

    @profiler.Profile(str(path))
    def fail():
        _work(10)
        return 1 / 0

    with pytest.raises(ZeroDivisionError):
        fail()
    assert "_work" in _functions(path)


def test_recursive_calls_profile_the_outermost(tmp_path):
    """A recursive decorated function is profiled once, from the outermost call."""
    path = tmp_path / "recursive.prof"

    @profiler.Profile(str(path))
    def factorial(value):
        return 1 if value <= 1 else value * factorial(value - 1)

    assert factorial(10) == 3628800
    stats = pstats.Stats(str(path)).stats
    calls = [value for (_file, _line, name), value in stats.items() if name == "factorial"]
    assert calls[0][1] == 10  # total calls, including the recursive ones


def test_threads_share_one_instance(tmp_path):
    """Several threads may run the same decorated function at once."""
    path = tmp_path / "threads.prof"
    errors = []

    @profiler.Profile(str(path))
    def compute():
        _work(20000)

    def run():
        try:
            compute()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert "compute" in _functions(path)


def test_readme_names():
    """The README's ``c2cwsgiutils.profile.Profiler`` (and ``Profile``) are the profiler."""
    assert profile.Profiler is profiler.Profile
    assert profile.Profile is profiler.Profile
    assert repr(profile.Profiler("/tmp/x.prof", 5)) == "Profile('/tmp/x.prof', print_number=5)"
