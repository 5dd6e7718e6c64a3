"""The request path's histograms in their own multiprocess file, read by prometheus_client's collector."""

from __future__ import annotations

import os
import threading

import pytest
from prometheus_client import CollectorRegistry, Histogram, multiprocess

from c2cwsgiutils import _histogram_file, _prometheus_multiproc, testing

_BOUNDS = (0.005, 0.1, 1.0, float("inf"))


def _scrape(directory) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in registry.collect()
        for sample in metric.samples
    }


def _series(directory, **labels):
    file = _histogram_file.HistogramFile(str(directory))
    return file, file.series("app_seconds", "Time", labels, _BOUNDS)


def test_observations_are_scraped_as_a_histogram(tmp_path) -> None:
    _, series = _series(tmp_path, route="hello")
    for amount in (0.001, 0.005, 0.05, 2.0):
        series.observe(amount)
    assert os.listdir(tmp_path) == [f"histogram_{os.getpid()}_c2c.db"]
    assert _scrape(tmp_path) == {
        ("app_seconds_sum", (("route", "hello"),)): pytest.approx(2.056),
        ("app_seconds_count", (("route", "hello"),)): 4.0,
        ("app_seconds_bucket", (("le", "0.005"), ("route", "hello"))): 2.0,
        ("app_seconds_bucket", (("le", "0.1"), ("route", "hello"))): 3.0,
        ("app_seconds_bucket", (("le", "1.0"), ("route", "hello"))): 3.0,
        ("app_seconds_bucket", (("le", "+Inf"), ("route", "hello"))): 4.0,
    }


def test_a_new_series_is_scraped_with_empty_buckets(tmp_path) -> None:
    _series(tmp_path, route="never")
    scraped = _scrape(tmp_path)
    assert scraped[("app_seconds_count", (("route", "never"),))] == 0.0
    assert scraped[("app_seconds_bucket", (("le", "0.005"), ("route", "never")))] == 0.0


def test_same_labels_give_the_same_series(tmp_path) -> None:
    file, series = _series(tmp_path, route="a")
    assert file.series("app_seconds", "Time", {"route": "a"}, _BOUNDS) is series
    assert file.series("app_seconds", "Time", {"route": "b"}, _BOUNDS) is not series


def test_bounds_must_end_with_infinity(tmp_path) -> None:
    file = _histogram_file.HistogramFile(str(tmp_path))
    with pytest.raises(ValueError, match="must be sorted and end with"):
        file.series("app_seconds", "Time", {}, (0.1, 1.0))


def test_summed_with_prometheus_client_files(tmp_path) -> None:
    """A prometheus_client histogram file of another process, same name and labels: one summed series."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    other = MmapedDict(str(tmp_path / "histogram_1.db"))  # what prometheus_client's values write
    labels = {"route": "hello"}
    other.write_value(mmap_key("app_seconds", "app_seconds_sum", ["route"], ["hello"], "Time"), 0.5, 0.0)
    for bound, count in (("0.005", 0.0), ("0.1", 0.0), ("1.0", 1.0), ("+Inf", 0.0)):
        key = mmap_key("app_seconds", "app_seconds_bucket", ["route", "le"], ["hello", bound], "Time")
        other.write_value(key, count, 0.0)
    other.close()
    _, series = _series(tmp_path, **labels)
    series.observe(0.05)
    scraped = _scrape(tmp_path)
    assert scraped[("app_seconds_count", (("route", "hello"),))] == 2.0
    assert scraped[("app_seconds_sum", (("route", "hello"),))] == pytest.approx(0.55)
    assert scraped[("app_seconds_bucket", (("le", "0.1"), ("route", "hello")))] == 1.0
    assert scraped[("app_seconds_bucket", (("le", "1.0"), ("route", "hello")))] == 2.0
    assert len([name for name, _ in scraped if name == "app_seconds_count"]) == 1


def test_the_file_grows(tmp_path) -> None:
    """Past the first 64 KiB the file is extended; every series keeps its values."""
    file = _histogram_file.HistogramFile(str(tmp_path))
    count = 300  # 300 series of 5 entries of ~150 bytes: ~230 KiB
    for index in range(count):
        file.series("app_seconds", "Time", {"route": f"route_{index:04d}"}, _BOUNDS).observe(index / 1000)
    assert os.path.getsize(tmp_path / _histogram_file.file_name(os.getpid())) > 1 << 16
    scraped = _scrape(tmp_path)
    for index in range(count):
        labels = (("route", f"route_{index:04d}"),)
        assert scraped[("app_seconds_count", labels)] == 1.0
        assert scraped[("app_seconds_sum", labels)] == pytest.approx(index / 1000)


def test_concurrent_observations_are_all_counted(tmp_path) -> None:
    _, series = _series(tmp_path, route="busy")

    def observe() -> None:
        for _ in range(5000):
            series.observe(0.001)

    threads = [threading.Thread(target=observe) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _scrape(tmp_path)[("app_seconds_count", (("route", "busy"),))] == 20000.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_writes_a_file_of_its_own(tmp_path) -> None:
    _, series = _series(tmp_path, route="hello")
    series.observe(0.001)
    child = os.fork()
    if child == 0:  # pragma: no cover  # the child's coverage is not collected
        try:
            series.observe(0.002)
            series.observe(0.003)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    series.observe(0.004)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [_histogram_file.file_name(os.getpid()), _histogram_file.file_name(child)]
    )
    # Parent 2 observations, child 2 (its file starts empty: nothing counted twice).
    assert _scrape(tmp_path)[("app_seconds_count", (("route", "hello"),))] == 4.0
    _prometheus_multiproc.mark_process_dead(child, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(
        [_histogram_file.file_name(os.getpid()), "histogram_archive.db"]
    )
    assert _scrape(tmp_path)[("app_seconds_count", (("route", "hello"),))] == 4.0


def test_not_used_outside_multiprocess_mode(monkeypatch, tmp_path) -> None:
    """This test process imported prometheus_client without PROMETHEUS_MULTIPROC_DIR."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert _histogram_file.for_process() is None


def test_prometheus_client_reads_the_format() -> None:
    assert _histogram_file._reads_back()


def test_default_buckets_as_prometheus_client(tmp_path) -> None:
    """The labels of the buckets are written as prometheus_client writes them."""
    file = _histogram_file.HistogramFile(str(tmp_path))
    file.series("app_seconds", "Time", {}, Histogram.DEFAULT_BUCKETS).observe(0.3)
    buckets = {dict(labels)["le"] for name, labels in _scrape(tmp_path) if name == "app_seconds_bucket"}
    assert buckets == {
        "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0",
        "7.5", "10.0", "+Inf",
    }  # fmt: skip


def test_a_failing_format_check_falls_back_once(monkeypatch) -> None:
    """A prometheus_client that cannot read the file: prometheus_client's histograms, one warning."""
    calls = []

    def broken() -> bool:
        calls.append(1)
        raise RuntimeError("unknown format")

    monkeypatch.setattr(_histogram_file, "_READ_BACK", [])
    monkeypatch.setattr(_histogram_file, "_reads_back", broken)
    with testing.capture_logs("c2cwsgiutils.prometheus") as records:
        assert _histogram_file.format_is_read_back() is False
        assert _histogram_file.format_is_read_back() is False
    assert calls == [1]
    assert [record.getMessage() for record in records] == [
        "Request metrics through prometheus_client: format check failed"
    ]


def test_used_only_where_the_files_are_read(monkeypatch, tmp_path) -> None:
    """A single process (waitress) serves its registry: only a gunicorn worker uses the file."""
    from prometheus_client import values

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values.ValueClass, "_multiprocess", True, raising=False)
    monkeypatch.setattr(_histogram_file, "_IN_USE", [])
    monkeypatch.setattr(_histogram_file, "_PROCESS_FILES", {})
    assert _histogram_file.for_process() is None
    _histogram_file.use_in_this_process()
    assert isinstance(_histogram_file.for_process(), _histogram_file.HistogramFile)
