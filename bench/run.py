"""Benchmark harness (issue 10): the same service on bare Pyramid and with c2cwsgiutils, side by side.

Usage (from the repository root, or ``make bench``; ``BENCH_ARGS=--quick`` for a smoke run)::

    .venv/bin/python bench/run.py [--quick] [--duration 10] [--rounds 9] [--connections 8] [--no-redis]

Measurements, each on the bare service (A) and on the c2cwsgiutils one (B), alternated A/B, B/A,
A/B... ``--rounds`` times (median and min-max of the rounds; the ratio c2c/bare is the median of
the rounds' ratios, each round running both back to back, with their min-max; the order changes
every round, so that a load that grows or fades on a shared machine does not favour the variant
that always ran first):

- ``wrk`` (1 thread, ``--connections``, ``--duration`` s) on the hello view, the health check (2
  engines + Redis, bare doing the same queries) and the DB view: req/s, p50, p99;
- PostgreSQL connections of each service in ``pg_stat_activity`` after the load (held, and
  ``idle in transaction``);
- worker RSS (``VmRSS``) after the load;
- start-up to first 200: gunicorn spawned, ``/hello`` polled every 10 ms;
- JSON log records/s in-process against python-json-logger (``json_log.py``): the best of the
  rounds (CPU time of the process), as ``timeit`` advises, since the load of a shared machine only
  lowers the figure;
- metrics scrape time with 4 workers, without and with ~100 worker recycles
  (``prometheus_scrape.py``; c2c only: bare Pyramid has no multiprocess metrics), with gunicorn
  in its own PID namespace (``unshare``, as root), as in a container: the library's memory
  collector reads the smaps of the master and its workers (in a thread of the master every
  ``C2C_PROMETHEUS_WORKER_INTERVAL`` s, not in the scrape); once more on the host's ``/proc``.

The table ends with one line of ratios against the targets of issue 10.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import _servers
import json_log
import prometheus_scrape

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_WARMUP_SECONDS = 2


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A path requested by wrk on both variants."""

    name: str
    path: str


#: The wrk measurements, in table order.
SCENARIOS = (
    Scenario("hello", "/hello"),
    Scenario("health_check", "/c2c/health_check?max_level=1"),
    Scenario("DB view", "/items"),
)


@dataclasses.dataclass(frozen=True)
class Run:
    """The figures of one wrk run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int = 0


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        msg = f"Unexpected wrk duration: {text!r}"
        raise ValueError(msg)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> Run:
    """Read requests/s, p50 and p99 from the output of ``wrk --latency``; fail on errors."""
    if "Non-2xx or 3xx responses" in output or "Socket errors" in output:
        msg = f"wrk saw failed requests:\n{output}"
        raise RuntimeError(msg)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    requests = re.search(r"^\s+(\d+) requests in ", output, re.MULTILINE)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if rps is None or p50 is None or p99 is None or requests is None:
        msg = f"Cannot parse the output of wrk:\n{output}"
        raise RuntimeError(msg)
    return Run(
        float(rps.group(1)), _duration_ms(p50.group(1)), _duration_ms(p99.group(1)), int(requests.group(1))
    )


def wrk(url: str, duration: int, connections: int) -> Run:
    """Run wrk (1 thread) on ``url`` for ``duration`` seconds."""
    command = ["wrk", "--threads", "1", "--connections", str(connections), "--duration", f"{duration}s"]
    command += ["--timeout", "5s", "--latency", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30, check=True)
    return parse_wrk(result.stdout)


def _spread(values: Sequence[float], digits: int, statistic: Callable[[Sequence[float]], float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistic(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


@dataclasses.dataclass(frozen=True)
class Target:
    """A target of issue 10: on the ratio c2c / bare, or on the c2c value when there is no bare one."""

    text: str
    met: Callable[[float], bool]


def at_least(limit: float) -> Target:
    """Ratio (or value) at least ``limit``."""
    return Target(f">= {limit:g}", lambda value: value >= limit)


def at_most(limit: float) -> Target:
    """Ratio (or value) at most ``limit``."""
    return Target(f"<= {limit:g}", lambda value: value <= limit)


@dataclasses.dataclass
class Row:
    """One line of the table: the values of each round (bare is None when there is no bare service)."""

    name: str
    short: str
    digits: int
    target: Target | None = None
    bare: list[float] | None = dataclasses.field(default_factory=list)
    c2c: list[float] = dataclasses.field(default_factory=list)
    absolute: bool = False  # the target is on the c2c value, not on the ratio
    # Median of the rounds; the best one (max) for in-process CPU figures, which noise only lowers.
    statistic: Callable[[Sequence[float]], float] = statistics.median

    def paired(self) -> list[float] | None:
        """The ratio c2c / bare of each round, when the rounds pair (both back to back).

        Pairs compare what ran under the same conditions: a slower minute of a shared machine
        lowers both figures of its round, where medians taken apart can pick rounds of different
        minutes. ``None`` for best-of figures (in-process CPU) and unpaired rows.
        """
        if self.bare is None or self.absolute or self.statistic is not statistics.median:
            return None
        if len(self.bare) != len(self.c2c) or not all(self.bare):
            return None
        return [c2c / bare for bare, c2c in zip(self.bare, self.c2c, strict=True)]

    def compared(self) -> float:
        """The ratio c2c / bare (median of the paired rounds, else of the statistics), or the c2c value.

        The c2c value is compared when there is no bare value or the target is absolute.
        """
        c2c = self.statistic(self.c2c)
        if self.bare is None or self.absolute:
            return c2c
        paired = self.paired()
        if paired:
            return statistics.median(paired)
        bare = self.statistic(self.bare)
        return c2c / bare if bare else (1.0 if c2c == bare else float("inf"))


_WRK_TARGETS = {
    ("hello", "req/s"): at_least(0.90),
    ("hello", "p99 ms"): at_most(1.3),
    ("health_check", "p50 ms"): at_most(1.5),
    ("health_check", "p99 ms"): at_most(2.0),
    ("DB view", "req/s"): at_least(0.85),
    ("DB view", "p99 ms"): at_most(1.3),
}


def _table(rows: Sequence[Row]) -> list[str]:
    lines = [
        f"{'measurement':<47} {'bare Pyramid':>24} {'c2cwsgiutils':>24} {'c2c/bare':>19} {'target':>8}",
    ]
    summary = []
    for row in rows:
        if not row.c2c:
            continue
        compared = row.compared()
        bare = "-" if row.bare is None else _spread(row.bare, row.digits, row.statistic)
        ratio = ""
        paired = row.paired()
        if paired and len(paired) > 1:
            ratio = f"{compared:.2f}x [{min(paired):.2f}-{max(paired):.2f}]"
        elif row.bare is not None and row.statistic(row.bare):
            ratio = f"{row.statistic(row.c2c) / row.statistic(row.bare):.2f}x"
        verdict = ""
        if row.target is not None:
            verdict = f"{row.target.text} {'ok' if row.target.met(compared) else 'MISSED'}"
            relative = row.bare is not None and not row.absolute
            value = f"{compared:.2f}x" if relative else _spread(row.c2c, row.digits, row.statistic)
            summary.append(f"{row.short} {value} ({verdict})")
        c2c = _spread(row.c2c, row.digits, row.statistic)
        lines.append(f"{row.name:<47} {bare:>24} {c2c:>24} {ratio:>19} {verdict}")
    return [*lines, "", "issue 10 targets (c2c/bare, or c2c value): " + ", ".join(summary)]


@dataclasses.dataclass(frozen=True)
class Options:
    """The command line."""

    duration: int
    rounds: int
    connections: int
    threads: int
    with_redis: bool
    startup_rounds: int
    log_records: int
    log_rounds: int
    scrape_requests: int
    skip_scrape: bool


def _wrk_rows() -> dict[tuple[str, str], Row]:
    rows = {}
    for scenario in SCENARIOS:
        for label, digits in (("req/s", 0), ("p50 ms", 2), ("p99 ms", 2), ("worker CPU us/req", 0)):
            key = (scenario.name, label)
            rows[key] = Row(
                f"{scenario.name} {label}", f"{scenario.name} {label}", digits, _WRK_TARGETS.get(key)
            )
    return rows


def _load(stack: _servers.Stack, options: Options, rows: dict[str, Row]) -> list[Row]:
    """Wrk rounds on both services, then connections and RSS after each round."""
    wrk_rows = _wrk_rows()
    services = {
        variant: stack.serve(variant, _servers.ServeOptions(threads=options.threads, ready_path="/hello"))
        for variant in ("bare", "c2c")
    }
    for scenario in SCENARIOS:
        for service in services.values():
            wrk(service.base_url + scenario.path, _WARMUP_SECONDS, options.connections)
    for round_number in range(1, options.rounds + 1):
        for scenario in SCENARIOS:
            for variant in _servers.round_order(round_number):
                service = services[variant]
                workers = service.worker_pids()
                cpu_before = sum(_servers.cpu_seconds(pid) for pid in workers)
                run = wrk(service.base_url + scenario.path, options.duration, options.connections)
                cpu = sum(_servers.cpu_seconds(pid) for pid in workers) - cpu_before
                for label, value in (
                    ("req/s", run.requests_per_second),
                    ("p50 ms", run.p50_ms),
                    ("p99 ms", run.p99_ms),
                    ("worker CPU us/req", cpu / max(run.requests, 1) * 1e6),
                ):
                    getattr(wrk_rows[scenario.name, label], variant).append(value)
                print(
                    f"  round {round_number} {scenario.name:<13} {variant:<5} "
                    f"{run.requests_per_second:8.0f} req/s p50 {run.p50_ms:6.2f} ms p99 {run.p99_ms:6.2f} ms",
                    flush=True,
                )
        time.sleep(1)  # the last responses are sent, the sessions closed
        activity = stack.pg_activity()
        for variant, service in services.items():
            states = activity.get(variant, {})
            getattr(rows["pg held"], variant).append(sum(states.values()))
            getattr(rows["pg idle tx"], variant).append(states.get("idle in transaction", 0))
            for pid in service.worker_pids():
                getattr(rows["rss"], variant).append(_servers.rss_kib(pid) / 1024)
        print(f"  round {round_number} pg_stat_activity after load: {activity}", flush=True)
    for service in services.values():
        service.stop()
    return list(wrk_rows.values())


def _startup(stack: _servers.Stack, options: Options, row: Row) -> None:
    for round_number in range(1, options.startup_rounds + 1):
        for variant in _servers.round_order(round_number):
            service = stack.serve(
                variant, _servers.ServeOptions(threads=options.threads, ready_path="/hello")
            )
            service.stop()
            getattr(row, variant).append(service.startup_seconds * 1000)
            milliseconds = service.startup_seconds * 1000
            print(f"  round {round_number} start-up to first 200 {variant:<5} {milliseconds:6.0f} ms")


def _json_log(options: Options) -> list[Row]:
    rows = []
    results = json_log.run(options.log_records, options.log_rounds, ("c2c", "pjl"))
    for case in json_log.CASES:
        row = Row(
            f"JSON log {case} best rec/s (bare: python-json-logger)",
            f"JSON log {case}",
            0,
            at_least(2.0),
            statistic=max,
        )
        row.bare, row.c2c = results[case, "pjl"], results[case, "c2c"]
        rows.append(row)
    return rows


def _scrape(options: Options) -> list[Row]:
    """Scrape time with 4 workers: in a PID namespace (as in a container), and on the host."""
    rows = []
    recycles = options.scrape_requests // 100
    isolated = os.geteuid() == 0 and shutil.which("unshare") is not None
    runs = [(0, "4 workers", isolated), (100, f"4 workers, ~{recycles} recycles", isolated)]
    if isolated:
        runs.append((0, "4 workers, host /proc", False))
    for max_requests, name, in_namespace in runs:
        # The host run only shows the cost of the host's processes: fewer requests are enough.
        total = options.scrape_requests if in_namespace == isolated else options.scrape_requests // 5
        scrape_ms, files, counted = prometheus_scrape.run(
            "archive", max_requests, total, isolated=in_namespace
        )
        print(f"  metrics scrape {name}: {scrape_ms:.1f} ms, {files} files, {counted} requests counted")
        target = at_most(10) if in_namespace == isolated else None
        rows.append(Row(f"metrics scrape ms, {name}", f"scrape {name}", 1, target, None, [scrape_ms]))
        rows.append(Row(f"metrics files, {name}", f"files {name}", 0, None, None, [files]))
    return rows


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: short and fewer rounds")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="A/B, B/A rounds per wrk measurement (default 9, quick 1)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--threads", type=int, default=8, help="gthread threads of the worker (default 8)")
    parser.add_argument("--no-redis", action="store_true", help="no Redis (no Redis check)")
    parser.add_argument("--no-scrape", action="store_true", help="skip the metrics scrape measurement")
    args = parser.parse_args(argv)
    quick = args.quick
    return Options(
        duration=args.duration or (3 if quick else 10),
        rounds=args.rounds or (1 if quick else 9),
        connections=args.connections,
        threads=args.threads,
        with_redis=not args.no_redis,
        startup_rounds=2 if quick else 9,
        log_records=5_000,
        log_rounds=1 if quick else 7,
        scrape_requests=2_000 if quick else 10_000,
        skip_scrape=args.no_scrape,
    )


def _compile_sources() -> None:
    """Byte-compile the library and the services, as an installed package is (pip does it).

    Otherwise a checkout without ``__pycache__`` (a fresh clone, ``PYTHONDONTWRITEBYTECODE=1``)
    compiles every module of the library at each start of the c2c service, and the start-up
    figure measures the compiler.
    """
    import c2cwsgiutils

    for directory in (Path(c2cwsgiutils.__file__).parent, Path(__file__).resolve().parent):
        compileall.compile_dir(directory, quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement, print the table; always stop every process."""
    options = _parse(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    _compile_sources()
    print(
        f"{dt.datetime.now(tz=dt.UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} CPUs: wrk {options.duration} s x {options.rounds} rounds, {options.connections} "
        f"connections; gunicorn 1 worker gthread {options.threads} threads; Redis "
        f"{'on' if options.with_redis else 'off'}",
        flush=True,
    )
    rows = {
        "pg held": Row("PG connections held after load", "PG held", 0),
        "pg idle tx": Row(
            "PG idle in transaction after load", "PG idle in transaction", 0, at_most(0), absolute=True
        ),
        "rss": Row("worker RSS MiB after load", "RSS", 1, at_most(1.1)),
        "startup": Row("start-up to first 200 ms", "start-up", 0, at_most(1.15)),
    }
    with _servers.Stack(with_redis=options.with_redis) as stack:
        wrk_rows = _load(stack, options, rows)
        _startup(stack, options, rows["startup"])
        activity = stack.pg_activity()
    print(f"  pg_stat_activity at the end (services stopped): {activity}")
    print("  JSON log records/s (in-process)...", flush=True)
    other = _json_log(options)
    if not options.skip_scrape:
        print("  metrics scrape (4 workers)...", flush=True)
        other += _scrape(options)
    table = _table([*wrk_rows, rows["pg held"], rows["pg idle tx"], rows["rss"], rows["startup"], *other])
    print("\n".join(["", *table]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
