from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from c2cwsgiutils import (
    _metrics,
    _prometheus_collectors,
    _prometheus_multiproc,
    prometheus,
    testing,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _reset_prometheus():
    """Each test reads the environment again and leaves no server running."""
    prometheus._reset()
    _metrics.use_registry(None, reread_settings=True)
    yield
    prometheus._reset()
    _metrics.use_registry(None, reread_settings=True)
    _prometheus_collectors.MULTI_PROCESS_COLLECTOR_BROADCAST_CHANNELS.clear()


def test_build_metric_name_uses_the_prefix_of_the_environment(monkeypatch):
    """build_metric_name prepends C2C_PROMETHEUS_PREFIX, read on first use and not at import."""
    assert prometheus.build_metric_name("x") == "c2cwsgiutils_x"
    monkeypatch.setenv("C2C_PROMETHEUS_PREFIX", "svc_")
    assert prometheus.build_metric_name("x") == "c2cwsgiutils_x"  # resolved once
    _metrics.use_registry(None, reread_settings=True)
    assert prometheus.build_metric_name("x") == "svc_x"


def test_serialize_collected_data_keeps_gauges_and_counters_with_pid():
    """Only gauge and counter families are serialised, each sample with the process id."""
    registry = CollectorRegistry()
    Gauge("g", "a gauge", ("kind",), registry=registry).labels(kind="a").set(3)
    Counter("c", "a counter", registry=registry).inc(2)
    Histogram("h", "a histogram", registry=registry).observe(1)
    serialized = prometheus.serialize_collected_data(registry)
    assert [(m["type"], m["args"]["name"]) for m in serialized] == [("gauge", "g"), ("counter", "c")]
    assert serialized[0]["samples"] == [
        {"name": "g", "labels": {"kind": "a", "pid": str(os.getpid())}, "value": 3}
    ]
    json.dumps(serialized)  # travels through a broadcast


def test_custom_collector_rebuilds_families_from_answers(monkeypatch):
    """Answers of the broadcast channels become families; missing answers and duplicates are skipped."""
    from c2cwsgiutils import broadcast

    registry = CollectorRegistry()
    Gauge("worker_gauge", "per worker", registry=registry).set(7)
    answer = prometheus.serialize_collected_data(registry)
    calls = []

    def fake_broadcast(channel, params=None, expect_answers=False, timeout=10):
        calls.append((channel, expect_answers, timeout))
        return [answer, None, answer]

    monkeypatch.setattr(broadcast, "broadcast", fake_broadcast)
    collector = prometheus.MultiProcessCustomCollector(timeout=2)
    assert list(collector.collect()) == []  # no channel: no broadcast, no wait
    assert calls == []
    prometheus.MULTI_PROCESS_COLLECTOR_BROADCAST_CHANNELS.append("my_channel")
    (family,) = list(collector.collect())
    assert calls == [("my_channel", True, 2)]
    assert family.name == "worker_gauge"
    assert [(s.labels, s.value) for s in family.samples] == [({"pid": str(os.getpid())}, 7)]


def test_memory_map_collector_reads_processes_and_skips_unreadable(monkeypatch):
    """The smap gauge has this process's memory; unknown or forbidden processes are skipped."""
    pid = str(os.getpid())
    (family,) = list(prometheus.MemoryMapCollector(pids=[pid, "999999999"]).collect())
    assert family.name == "c2cwsgiutils_process_smap_pss_bytes"
    ((labels, value),) = [(s.labels, s.value) for s in family.samples]
    assert labels["pid"] == pid
    assert value > 1_000_000

    def forbidden(path, *args, **kwargs):
        raise PermissionError(path)

    monkeypatch.setattr(_prometheus_collectors.os, "open", forbidden)
    (family,) = list(prometheus.MemoryMapCollector().collect())
    assert family.samples == []


def test_memory_map_collector_sums_the_fields_of_smaps_and_smaps_rollup(tmp_path, monkeypatch):
    """Pss, Rss, Uss (private clean + dirty) in bytes, from smaps_rollup, else summed over smaps."""
    rollup = "55-7f ---p 00000000 00:00 0  [rollup]\nRss:  300 kB\nPss:  200 kB\nPss_Anon:  150 kB\n"
    rollup += "Private_Clean:  10 kB\nPrivate_Dirty:  90 kB\n"
    smaps = "55-56 r--p 0 08:01 1  /bin/x\nRss:  100 kB\nPss:  50 kB\nPrivate_Dirty:  5 kB\n" * 3
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "smaps_rollup").write_text(rollup)
    (tmp_path / "1" / "comm").write_text("one\n")
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "smaps").write_text(smaps)
    (tmp_path / "2" / "comm").write_text("two\n")
    real_read = _prometheus_collectors._read
    monkeypatch.setattr(
        _prometheus_collectors, "_read", lambda path: real_read(path.replace("/proc", str(tmp_path), 1))
    )
    expected = {"pss": (200, 150), "rss": (300, 300), "uss": (100, 15)}
    for memory_type, (first, second) in expected.items():
        (family,) = list(prometheus.MemoryMapCollector(memory_type, pids=["1", "2", "3"]).collect())
        assert family.name == f"c2cwsgiutils_process_smap_{memory_type}_bytes"
        assert [(s.labels, s.value) for s in family.samples] == [
            ({"pid": "1", "name": "one"}, first * 1024),
            ({"pid": "2", "name": "two"}, second * 1024),
        ]


@pytest.fixture
def allocating_child() -> Iterator[subprocess.Popen[str]]:
    """A Python process that holds 64 MiB more (touched) after each line it reads."""
    code = "import sys\nheld = []\nfor _ in sys.stdin:\n    held.append(bytearray(64 << 20))\n"
    code += "    print(flush=True)\n"
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            yield child
        finally:
            child.kill()


def _grow(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write("\n")
    child.stdin.flush()
    child.stdout.readline()


def _pss(collector: prometheus.MemoryMapCollector) -> float:
    (family,) = list(collector.collect())
    (sample,) = family.samples
    return float(sample.value)


def _new_memory_thread(before: set[threading.Thread]) -> threading.Thread:
    """The thread that reads the memory, started since ``before``."""
    (thread,) = [t for t in set(threading.enumerate()) - before if t.name == "c2c-prometheus-memory"]
    return thread


def test_memory_map_collector_with_an_interval_serves_the_last_sample(allocating_child):
    """A scrape gets the values of the last read; a thread reads again every interval while scraped."""
    _grow(allocating_child)
    collector = prometheus.MemoryMapCollector(pids=[str(allocating_child.pid)], interval=0.3)
    threads = set(threading.enumerate())
    before = _pss(collector)  # the first scrape reads
    assert before > 64 << 20
    thread = _new_memory_thread(threads)
    _grow(allocating_child)
    assert _pss(collector) == before  # served from the sample
    deadline = time.monotonic() + 10
    while _pss(collector) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pss(collector) > before + (60 << 20)  # the thread read again
    assert thread.is_alive()


def test_memory_map_collector_thread_ends_when_nobody_scrapes(allocating_child):
    """Without a scrape for 12 intervals the thread ends; the next scrape reads at once and starts it."""
    collector = prometheus.MemoryMapCollector(pids=[str(allocating_child.pid)], interval=0.02)
    threads = set(threading.enumerate())
    before = _pss(collector)
    thread = _new_memory_thread(threads)
    thread.join(10)
    assert not thread.is_alive()
    _grow(allocating_child)
    threads = set(threading.enumerate())
    assert _pss(collector) > before + (60 << 20)  # read now, not the old sample
    assert _new_memory_thread(threads).is_alive()


def test_memory_map_collector_reads_again_in_a_forked_child(tmp_path):
    """A forked process has no sampling thread: its first scrape reads its own tree."""
    collector = prometheus.MemoryMapCollector(interval=60)
    (family,) = list(collector.collect())
    assert {sample.labels["pid"] for sample in family.samples} >= {str(os.getpid())}
    result = tmp_path / "pids"
    pid = os.fork()
    if pid == 0:  # pragma: no cover  # the child reports through the file
        try:
            (child_family,) = list(collector.collect())
            result.write_text(" ".join(sample.labels["pid"] for sample in child_family.samples))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert result.read_text().split()[0] == str(pid)


def test_single_process_collectors(monkeypatch):
    """start_single_process adds the resource and memory collectors and serves them on the port."""
    port = _free_port()
    monkeypatch.setenv("C2C_PROMETHEUS_PORT", str(port))
    registry = CollectorRegistry()
    prometheus.start_single_process(registry)
    prometheus.start_single_process(registry)  # idempotent
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'c2cwsgiutils_python_resource{name="ru_maxrss"}' in text
    assert 'c2cwsgiutils_python_memory_info{name="rss"}' in text


def test_version_gauge(tmp_path, monkeypatch):
    """Including the version module sets the version gauge with the git hash and package versions."""
    path = tmp_path / "versions.json"
    path.write_text(
        json.dumps({"main": {"git_hash": "abc123"}, "packages": {"pyramid": "2.0.2", "my-app": "1.0"}})
    )
    monkeypatch.setenv("C2C_VERSIONS_PATH", str(path))
    monkeypatch.setenv("C2C_PROMETHEUS_APPLICATION_PACKAGE", "my-app")
    registry = CollectorRegistry()
    _metrics.use_registry(registry, reread_settings=True)
    testing.make_app({}, includes=("c2cwsgiutils.version",))
    labels = {
        "git_hash": "abc123",
        "c2cwsgiutils": "<missing>",
        "pyramid": "2.0.2",
        "gunicorn": "<missing>",
        "SQLAlchemy": "<missing>",
        "application": "1.0",
    }
    assert registry.get_sample_value("c2cwsgiutils_version", labels) == 1


_WORKER = """
import os, sys
from prometheus_client import Counter, Gauge, Histogram
Counter("jobs", "jobs done", ["kind"]).labels(kind="a").inc(int(sys.argv[1]))
Histogram("job_seconds", "durations").observe(0.5)
Gauge("live_gauge", "per process", multiprocess_mode="liveall").set(1)
Gauge("all_gauge", "per process", multiprocess_mode="all").set(2)
"""


# The workers of _run_workers that still run (they wait for their stdin to close), by pid.
_ALIVE: dict[int, subprocess.Popen] = {}


@pytest.fixture(autouse=True)
def _stop_workers():
    yield
    for pid in list(_ALIVE):
        _stop(pid)


def _run_workers(directory, count, increment=1):
    """Start ``count`` processes that write metrics and keep running until ``_stop``: their pids."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    pids = []
    for _ in range(count):
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER + "print(os.getpid(), flush=True)\nsys.stdin.read()",
                str(increment),
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        pid = int(process.stdout.readline())
        _ALIVE[pid] = process
        pids.append(pid)
    return pids


def _stop(pid):
    """Let the worker ``pid`` exit, and wait for it (as gunicorn's master reaps its workers)."""
    process = _ALIVE.pop(pid)
    process.stdin.close()
    process.wait(timeout=60)
    process.stdout.close()


def _collect(directory, collector=None):
    samples = {}
    collector = collector or _prometheus_multiproc.ArchivingCollector(str(directory))
    for family in collector.collect():
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_dead_workers_are_archived_with_monotonic_totals_and_bounded_files(tmp_path, monkeypatch):
    """Dead workers' counters and histograms go into archives; their gauges disappear; few files remain."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_999.db").write_bytes(b"stale")  # from a previous run
    (tmp_path / "keep.txt").write_text("not ours")
    assert _prometheus_multiproc.empty_directory(str(tmp_path)) == 1
    assert os.listdir(tmp_path) == ["keep.txt"]

    total = 0
    for round_number in range(3):
        pids = _run_workers(tmp_path, 4, increment=round_number + 1)
        total += 4 * (round_number + 1)
        before = _collect(tmp_path)
        assert before[("jobs_total", (("kind", "a"),))] == total
        assert before[("live_gauge", (("pid", str(pids[0])),))] == 1
        for pid in pids:
            _stop(pid)
            prometheus.mark_process_dead(pid)
        after = _collect(tmp_path)
        assert after[("jobs_total", (("kind", "a"),))] == total
        assert after[("job_seconds_count", ())] == 4 * (round_number + 1)
        assert after[("job_seconds_bucket", (("le", "0.5"),))] == 4 * (round_number + 1)
        assert not [key for key in after if key[0] in ("live_gauge", "all_gauge")]
        assert os.listdir(tmp_path) == ["keep.txt"]


def test_archiving_collector_merges_as_prometheus_client_across_scrapes(tmp_path, monkeypatch):
    """Scrape after scrape, the families are those of prometheus_client's collector, values updated."""
    from prometheus_client import multiprocess

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    collector = _prometheus_multiproc.ArchivingCollector(str(tmp_path))
    reference = multiprocess.MultiProcessCollector(None, path=str(tmp_path))

    def families(source):
        return [(f.name, f.type, f.documentation, f.samples) for f in source.collect()]

    assert families(collector) == families(reference) == []
    pids = _run_workers(tmp_path, 2, increment=1)
    assert families(collector) == families(reference)
    # a worker file rewritten in place (same name, same size: same layout, new values)
    name = tmp_path / f"counter_{pids[0]}.db"
    data = name.read_bytes()
    name.write_bytes(data.replace(b'"kind": "a"', b'"kind": "b"'))
    assert families(collector) == families(reference)
    a_total, b_total = ("jobs_total", (("kind", "a"),)), ("jobs_total", (("kind", "b"),))
    # The first worker (kind b) dies: its values go into the archive, which prometheus_client's own
    # collector does not know (it reads files only); the second one (kind a) goes on.
    _stop(pids[0])
    prometheus.mark_process_dead(pids[0])
    ours, theirs = _collect(tmp_path, collector), _collect(tmp_path, reference)
    assert (ours[a_total], ours[b_total], theirs[a_total], b_total in theirs) == (1, 1, 1, False)
    assert (ours[("job_seconds_count", ())], theirs[("job_seconds_count", ())]) == (2, 1)
    _stop(pids[1])
    prometheus.mark_process_dead(pids[1])
    assert (_collect(tmp_path, collector)[a_total], _collect(tmp_path, reference)) == (1, {})
    _run_workers(tmp_path, 2, increment=2)
    ours, theirs = _collect(tmp_path, collector), _collect(tmp_path, reference)
    assert (ours[a_total], ours[b_total], theirs[a_total]) == (5, 1, 4)
    assert families(collector) != families(reference)


def test_start_serves_the_workers_files_and_empties_the_directory(tmp_path, monkeypatch):
    """start() empties the directory, then serves the files of the workers with the master collectors."""
    port = _free_port()
    monkeypatch.setenv("C2C_PROMETHEUS_PORT", str(port))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    _run_workers(tmp_path, 1, increment=5)
    prometheus.start()
    text = requests.get(f"http://127.0.0.1:{port}/", timeout=5).text
    assert "jobs_total" not in text  # the previous run's files were removed
    pids = _run_workers(tmp_path, 2, increment=3)
    start = time.perf_counter()
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert time.perf_counter() - start < 2
    assert 'jobs_total{kind="a"} 6.0' in text
    assert f'live_gauge{{pid="{pids[1]}"}} 1.0' in text
    assert "python_info{" in text
    smap = [line for line in text.splitlines() if line.startswith("c2cwsgiutils_process_smap_pss_bytes{")]
    assert any(f'pid="{os.getpid()}"' in line for line in smap)


def _own_pss(text: str) -> float:
    (line,) = [
        line
        for line in text.splitlines()
        if line.startswith("c2cwsgiutils_process_smap_pss_bytes{") and f'pid="{os.getpid()}"' in line
    ]
    return float(line.rsplit(" ", 1)[1])


def test_start_serves_the_memory_sampled_every_worker_interval(tmp_path, monkeypatch):
    """The master's scrape serves the memory read by its thread, not read again by each scrape."""
    port = _free_port()
    monkeypatch.setenv("C2C_PROMETHEUS_PORT", str(port))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("C2C_PROMETHEUS_WORKER_INTERVAL", "60")
    prometheus.start()
    threads = set(threading.enumerate())
    before = _own_pss(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    assert _new_memory_thread(threads).is_alive()
    held = bytearray(64 << 20)  # 64 MiB more, touched
    assert _own_pss(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text) == before
    assert len(held) == 64 << 20


def test_start_without_port_does_nothing(tmp_path, monkeypatch):
    """Without C2C_PROMETHEUS_PORT, start() neither serves nor touches the directory."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_1.db").write_bytes(b"x")
    prometheus.start()
    assert os.listdir(tmp_path) == ["counter_1.db"]


def test_worker_sampler_copies_process_and_gc_metrics():
    """The worker sampler writes the process and GC metrics, and starts a single thread per process."""
    sampler = _prometheus_multiproc.WorkerSampler(interval=60)
    sampler.sample()
    assert "process_resident_memory_bytes" in sampler._gauges
    assert "python_gc_collections_total" in sampler._gauges
    sampler.start()
    thread = sampler._thread
    sampler.start()
    assert sampler._thread is thread
    sampler.stop()
    assert not thread.is_alive()


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid not in (ancestor, 0, 1):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                pid = int(stat.read().rpartition(")")[2].split()[1])  # the parent pid
        except FileNotFoundError:
            return True  # ended since it was read: its parent was in the tree
    return pid == ancestor


def test_memory_map_collector_reads_the_process_tree():
    """By default: this process and its children, not every process of the machine."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for _ in range(100):  # the child is listed once it exists
            (family,) = list(prometheus.MemoryMapCollector().collect())
            pids = {sample.labels["pid"] for sample in family.samples}
            if str(child.pid) in pids:
                break
            time.sleep(0.05)
        assert {str(os.getpid()), str(child.pid)} <= pids
        # Every process read is this one or one of its descendants (not the machine's others).
        assert all(_descends_from(int(pid), os.getpid()) for pid in pids), pids
        assert all(sample.labels["name"] for sample in family.samples)
    finally:
        child.kill()
        child.wait()


def test_scrape_archives_the_files_of_processes_that_are_gone(tmp_path, monkeypatch):
    """With only prometheus_client's mark_process_dead in child_exit, a scrape archives the dead's files."""
    from prometheus_client import multiprocess

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    collector = _prometheus_multiproc.ArchivingCollector(str(tmp_path))
    for _ in range(5):
        pids = _run_workers(tmp_path, 2, increment=1)
        for pid in pids:
            _stop(pid)
            multiprocess.mark_process_dead(pid, str(tmp_path))  # the reference README's child_exit
    assert len(os.listdir(tmp_path)) == 5 * 2 * 3  # counter, histogram, gauge "all" per process
    assert _collect(tmp_path, collector)[("jobs_total", (("kind", "a"),))] == 10
    assert os.listdir(tmp_path) == []
    live = _run_workers(tmp_path, 1, increment=1)
    assert _collect(tmp_path, collector)[("jobs_total", (("kind", "a"),))] == 11
    assert len(os.listdir(tmp_path)) == 4  # the live worker's files stay
    assert _collect(tmp_path, collector)[("live_gauge", (("pid", str(live[0])),))] == 1


_WRITER = """
import sys, time
from prometheus_client import Histogram
histogram = Histogram("torn_seconds", "written while scraped", ["route"])
series = histogram.labels(route="hello")
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    for _ in range(100):
        series.observe(0.003)
"""


def test_a_scrape_never_reads_a_histogram_value_that_goes_down(tmp_path, monkeypatch):
    """A worker observes while the master scrapes its file: _sum, _count and buckets never decrease."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, "3"], env=env, stdout=subprocess.PIPE, text=True
    )
    collector = _prometheus_multiproc.ArchivingCollector(str(tmp_path))
    last: dict[tuple, float] = {}
    decreases = []
    scrapes = 0
    try:
        assert writer.stdout.readline().strip() == "ready"
        while writer.poll() is None and scrapes < 20_000:
            scrapes += 1
            for key, value in _collect(tmp_path, collector).items():
                if key[0].startswith("torn_seconds"):
                    if value < last.get(key, 0.0):
                        decreases.append((key, last[key], value))
                    last[key] = value
    finally:
        writer.wait(timeout=30)
        writer.stdout.close()
    assert scrapes > 10
    assert last[("torn_seconds_count", (("route", "hello"),))] > 0
    assert decreases == []


def test_child_exit_never_waits_for_the_archive_it_interrupts(tmp_path, monkeypatch):
    """A child_exit call while the archive is held in its own thread returns (gunicorn 23, SIGCHLD).

    The second worker's exit interrupts the archiving of the first one's in the same thread; the
    call must not wait for a lock its own thread holds (the master would spawn no more workers).
    Its files are archived by whoever holds the lock next.
    """
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    first, second = _run_workers(tmp_path, 2, increment=3)
    _stop(first)
    _stop(second)
    returned = threading.Event()

    def interrupted_hook() -> None:
        with _prometheus_multiproc._FILES_LOCK:  # the first exit being archived, in this thread
            prometheus.mark_process_dead(second)
            returned.set()

    thread = threading.Thread(target=interrupted_hook, daemon=True)
    thread.start()
    assert returned.wait(10), "mark_process_dead waited for the lock of its own thread"
    thread.join(10)
    prometheus.mark_process_dead(first)  # takes the lock: archives both
    assert os.listdir(tmp_path) == []
    collected = _collect(tmp_path)
    assert collected[("jobs_total", (("kind", "a"),))] == 6
