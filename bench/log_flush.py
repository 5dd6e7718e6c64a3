"""Benchmark (not a test): the JSON log lines of the c2c service written in batches or one by one.

Starts three services of ``services.py`` at once (``_servers.Stack``): bare, c2c with
``C2C_LOG_FLUSH_INTERVAL=0.05`` (its ``JsonLogHandler`` writes the lines in batches from a thread)
and c2c with the default ``C2C_LOG_FLUSH_INTERVAL=0`` (every line written by the request's
thread). Then ``wrk`` runs on each in turn, the order reversed every round, and it prints per
round the req/s and the voluntary context switches of the worker per request, then the median of
the rounds' ratios to bare::

    .venv/bin/python bench/log_flush.py [--path /hello] [--rounds 6] [--duration 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from collections.abc import Sequence

import _servers
from _servers import round_order
from run import wrk

# name -> (variant, environment of the service)
_SERVICES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "bare": ("bare", ()),
    "c2c batched": ("c2c", (("C2C_LOG_FLUSH_INTERVAL", "0.05"),)),
    "c2c one by one": ("c2c", ()),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds and print the figures; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--path", default="/hello", help="path requested (default /hello; /items: DB view)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds (default 6)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    args = parser.parse_args(argv)
    now = dt.datetime.now(dt.UTC)
    print(f"{now:%Y-%m-%d %H:%M} UTC, {args.path}, wrk {args.duration} s x {args.rounds} rounds")
    rates: dict[str, list[float]] = {name: [] for name in _SERVICES}
    with _servers.Stack() as stack:
        services = {
            name: stack.serve(variant, _servers.ServeOptions(ready_path=args.path, env=env))
            for name, (variant, env) in _SERVICES.items()
        }
        for service in services.values():
            wrk(service.base_url + args.path, 2, args.connections)  # warm-up
        for round_number in range(1, args.rounds + 1):
            figures = []
            for name in round_order(round_number, list(services)):
                service = services[name]
                (pid,) = service.worker_pids()
                before = _servers.voluntary_switches(pid)
                run = wrk(service.base_url + args.path, args.duration, args.connections)
                requests = run.requests_per_second * args.duration
                switches = (_servers.voluntary_switches(pid) - before) / requests
                rates[name].append(run.requests_per_second)
                figures.append(f"{name} {run.requests_per_second:6.0f} req/s {switches:5.1f} switches/req")
            print(f"  round {round_number}: " + ", ".join(figures), flush=True)
    for name in list(_SERVICES)[1:]:
        ratios = [value / bare for value, bare in zip(rates[name], rates["bare"], strict=True)]
        print(
            f"{name}/bare: {statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}] "
            f"(median of the rounds' ratios [min-max])"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
