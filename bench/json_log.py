"""Benchmark (not a test): JSON log records/s of the library's handler against python-json-logger.

In one process, a logger with a single handler writing to a null stream (``write``/``flush`` do
nothing, so the figure is the logging and formatting cost only) logs ``--records`` records per
run, for three cases: a plain message, a message with ``%`` args and ``extra=`` fields, and
``logger.exception`` (a traceback of a few frames). The handlers, alternated A/B, B/A
``--rounds`` times. Time is the CPU time of the process (``time.process_time``), so that the
other processes of a shared machine count less:

- **c2c**: ``c2cwsgiutils.pyramid_logging.JsonLogHandler`` (what ``LOG_TYPE=json`` uses);
- **pjl**: ``logging.StreamHandler`` with python-json-logger's ``JsonFormatter`` writing the same
  fields (timestamp, level, logger, file, line, function, pid, thread, process, message, host as
  a static field) with its default serialiser (``json.dumps``);
- **pjl-min** (for information): the same formatter with its default format (message + extras).

Usage::

    .venv/bin/python bench/json_log.py [--records 20000] [--rounds 5] [--profile CASE]

Prints the median records/s [min-max] per case and handler and the ratio c2c / pjl. With
``--profile plain|extra|exc_info``, profiles the c2c handler on that case with cProfile instead.

With ``--instructions``, counts instead the CPU instructions per record of each case (c2c, pjl,
and a ``NullHandler`` for the cost of ``logger.info`` itself), which the load of a shared machine
does not change: each handler logs 1 000 then 6 000 records under ``valgrind --tool=callgrind``
(hash seed 0), and the difference is divided by 5 000 (~3 min)::

    .venv/bin/python bench/json_log.py --instructions [--case extra]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from c2cwsgiutils.pyramid_logging import JsonLogHandler
from pythonjsonlogger.json import JsonFormatter

from _servers import round_order

_PJL_FIELDS = (
    "%(created)f %(levelname)s %(levelno)d %(name)s %(pathname)s %(lineno)d %(funcName)s "
    "%(process)d %(threadName)s %(processName)s %(message)s"
)


class _NullStream:
    """A text stream that drops what it is given."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _handlers() -> dict[str, Callable[[], logging.Handler]]:
    def c2c() -> logging.Handler:
        return JsonLogHandler(_NullStream())  # type: ignore[arg-type]  # a duck-typed text stream

    def pjl() -> logging.Handler:
        handler = logging.StreamHandler(_NullStream())
        handler.setFormatter(JsonFormatter(_PJL_FIELDS, static_fields={"host": socket.getfqdn()}))
        return handler

    def pjl_min() -> logging.Handler:
        handler = logging.StreamHandler(_NullStream())
        handler.setFormatter(JsonFormatter())
        return handler

    return {"c2c": c2c, "pjl": pjl, "pjl-min": pjl_min}


def _fail(depth: int) -> None:
    if depth == 0:
        msg = "the order 42 cannot be found"
        raise KeyError(msg)
    _fail(depth - 1)


def _plain(logger: logging.Logger, count: int) -> None:
    for _ in range(count):
        logger.info("the service is ready")


def _extra(logger: logging.Logger, count: int) -> None:
    extra = {"request_id": "4f9c0d1e-5a5b", "status": 200, "duration": 0.0123, "route": "items"}
    for index in range(count):
        logger.info("user %s read %d items from %s", "alice", index, "/api/items", extra=extra)


def _exc_info(logger: logging.Logger, count: int) -> None:
    for _ in range(count):
        try:
            _fail(3)
        except KeyError:
            logger.exception("cannot load the order")


CASES: dict[str, Callable[[logging.Logger, int], None]] = {
    "plain": _plain,
    "extra": _extra,
    "exc_info": _exc_info,
}


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger("bench.json_log")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def measure(case: str, handler: logging.Handler, records: int) -> float:
    """Return the records/s of ``handler`` for ``records`` records of ``case``."""
    logger = _logger(handler)
    CASES[case](logger, min(records, 200))  # warm-up (host name, caches)
    start = time.process_time()
    CASES[case](logger, records)
    return records / (time.process_time() - start)


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):9.0f} [{min(values):.0f}-{max(values):.0f}]"


def _profile(case: str, records: int) -> None:
    handler = _handlers()["c2c"]()
    profiler = cProfile.Profile()
    profiler.enable()
    measure(case, handler, records)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def run(records: int, rounds: int, names: Sequence[str]) -> dict[tuple[str, str], list[float]]:
    """Measure the handlers ``names`` on every case, alternated; return the records/s of each run."""
    factories = _handlers()
    results: dict[tuple[str, str], list[float]] = {}
    for round_number in range(1, rounds + 1):
        for case in CASES:
            for name in round_order(round_number, names):
                results.setdefault((case, name), []).append(measure(case, factories[name](), records))
    return results


_COUNTED_RECORDS = (1_000, 6_000)


def _log_only(name: str, case: str, records: int) -> None:
    """Log ``records`` records of ``case`` through handler ``name`` (``null``: a NullHandler)."""
    handler = logging.NullHandler() if name == "null" else _handlers()[name]()
    logger = _logger(handler)
    CASES[case](logger, 300)
    CASES[case](logger, records)


def _instructions(name: str, case: str) -> float:
    """CPU instructions per record of ``case`` through handler ``name``, counted by callgrind."""
    counts = []
    for records in _COUNTED_RECORDS:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
        command += [__file__, "--log-only", name, "--case", case, "--records", str(records)]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        match = re.search(r"Collected : (\d+)", result.stderr)
        if match is None:
            msg = f"no instruction count in the output of {' '.join(command)}: {result.stderr[-500:]}"
            raise RuntimeError(msg)
        counts.append(int(match.group(1)))
    return (counts[1] - counts[0]) / (_COUNTED_RECORDS[1] - _COUNTED_RECORDS[0])


def _print_instructions(cases: Sequence[str]) -> None:
    names = ("null", "c2c", "pjl")
    print("CPU instructions per record (callgrind; null: logger.info with a NullHandler):")
    print(f"{'case':<9} " + " ".join(f"{name:>9}" for name in names) + "  c2c alone  pjl alone  pjl/c2c")
    for case in cases:
        null, c2c, pjl = (_instructions(name, case) for name in names)
        cells = " ".join(f"{value:9.0f}" for value in (null, c2c, pjl))
        print(f"{case:<9} {cells}  {c2c - null:9.0f}  {pjl - null:9.0f}  {pjl / c2c:6.2f}x", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and print the table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=20_000, help="records per run (default 20000)")
    parser.add_argument("--rounds", type=int, default=5, help="A/B rounds (default 5)")
    parser.add_argument("--profile", choices=sorted(CASES), help="profile the c2c handler on a case")
    parser.add_argument("--instructions", action="store_true", help="count instructions per record")
    parser.add_argument("--case", choices=sorted(CASES), help="only this case (--instructions)")
    parser.add_argument("--log-only", choices=("null", "c2c", "pjl"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.log_only:
        _log_only(args.log_only, args.case, args.records)
        return 0
    if args.instructions:
        _print_instructions([args.case] if args.case else list(CASES))
        return 0
    if args.profile:
        _profile(args.profile, args.records)
        return 0
    factories = _handlers()
    results = run(args.records, args.rounds, tuple(factories))
    print(f"JSON log records/s, {args.records} records x {args.rounds} rounds, median [min-max]:")
    print(f"{'case':<9} " + " ".join(f"{name:>24}" for name in factories) + f" {'c2c/pjl':>8}")
    summary = []
    for case in CASES:
        cells = [_spread(results[case, name]) for name in factories]
        ratio = statistics.median(results[case, "c2c"]) / statistics.median(results[case, "pjl"])
        print(f"{case:<9} " + " ".join(f"{cell:>24}" for cell in cells) + f" {ratio:7.2f}x")
        summary.append(f"{case} {ratio:.2f}x")
    print("ratios c2c/python-json-logger (target >= 2x): " + ", ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
