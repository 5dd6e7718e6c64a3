"""Benchmark harness: the same service on bare Pyramid and with c2cwsgiutils, measured with wrk.

Usage (from the repository root, or ``make bench``)::

    .venv/bin/python bench/run.py [--duration 10] [--rounds 2] [--connections 8] [--no-redis]

Every measurement runs ``wrk`` on 127.0.0.1 for a bounded duration, alternately on the bare service
(A) and on the c2cwsgiutils one (B), ``--rounds`` times (A/B/A/B...); the table gives the median and
the min-max of the rounds, and the last line the ratios c2c / bare.

To add a measurement (issue 10), add a :class:`Scenario` to :data:`SCENARIOS` (a path served by both
variants of ``services.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence

import _servers

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_WARMUP_SECONDS = 2


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A path requested by wrk on both variants."""

    name: str
    path: str


#: The measurements, in table order.
SCENARIOS = (
    Scenario("health_check (max_level 1)", "/c2c/health_check?max_level=1"),
    Scenario("DB view (10 rows)", "/items"),
)


@dataclasses.dataclass(frozen=True)
class Run:
    """The figures of one wrk run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float


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
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if rps is None or p50 is None or p99 is None:
        msg = f"Cannot parse the output of wrk:\n{output}"
        raise RuntimeError(msg)
    return Run(float(rps.group(1)), _duration_ms(p50.group(1)), _duration_ms(p99.group(1)))


def wrk(url: str, duration: int, connections: int) -> Run:
    """Run wrk (1 thread) on ``url`` for ``duration`` seconds."""
    command = ["wrk", "--threads", "1", "--connections", str(connections), "--duration", f"{duration}s"]
    command += ["--timeout", "5s", "--latency", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30, check=True)
    return parse_wrk(result.stdout)


def _spread(values: Sequence[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def _table(results: dict[tuple[str, str], list[Run]]) -> tuple[list[str], list[str]]:
    lines = [f"{'measurement':<36} {'bare Pyramid':>26} {'c2cwsgiutils':>26} {'c2c/bare':>9}"]
    ratios = []
    for scenario in SCENARIOS:
        for label, attribute, digits in (
            ("req/s", "requests_per_second", 0),
            ("p50 ms", "p50_ms", 2),
            ("p99 ms", "p99_ms", 2),
        ):
            bare = [getattr(run, attribute) for run in results[scenario.name, "bare"]]
            c2c = [getattr(run, attribute) for run in results[scenario.name, "c2c"]]
            ratio = statistics.median(c2c) / statistics.median(bare)
            name = f"{scenario.name} {label}"
            lines.append(f"{name:<36} {_spread(bare, digits):>26} {_spread(c2c, digits):>26} {ratio:>8.2f}x")
            ratios.append(f"{scenario.name.split(' ', 1)[0]} {label} {ratio:.2f}x")
    return lines, ratios


def main(argv: Sequence[str] | None = None) -> int:
    """Start the stack, run the measurements, print the table; always stop every process."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="A/B rounds per measurement (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--threads", type=int, default=8, help="gthread threads of the worker (default 8)")
    parser.add_argument("--no-redis", action="store_true", help="no Redis (no Redis check, no PING)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    redis_state = "off" if args.no_redis else "on"
    print(f"{dt.datetime.now(tz=dt.UTC):%Y-%m-%d %H:%M} UTC: wrk {args.duration} s x {args.rounds} rounds,")
    print(
        f"  {args.connections} connections; gunicorn 1 worker gthread {args.threads} threads; "
        f"Redis {redis_state}"
    )
    results: dict[tuple[str, str], list[Run]] = {}
    with _servers.Stack(with_redis=not args.no_redis) as stack:
        services = {variant: stack.serve(variant, args.threads) for variant in ("bare", "c2c")}
        for scenario in SCENARIOS:
            for service in services.values():
                wrk(service.base_url + scenario.path, _WARMUP_SECONDS, args.connections)
        for round_number in range(1, args.rounds + 1):
            for scenario in SCENARIOS:
                for variant, service in services.items():
                    run = wrk(service.base_url + scenario.path, args.duration, args.connections)
                    results.setdefault((scenario.name, variant), []).append(run)
                    print(
                        f"  round {round_number} {scenario.name:<28} {variant:<5} "
                        f"{run.requests_per_second:8.0f} req/s p50 {run.p50_ms:6.2f} ms "
                        f"p99 {run.p99_ms:6.2f} ms",
                        flush=True,
                    )
    lines, ratios = _table(results)
    print("\n".join(["", *lines, "", "ratios c2c/bare: " + ", ".join(ratios)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
