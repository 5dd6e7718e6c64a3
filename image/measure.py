"""Measure the base image: start-up (``docker run`` to the first 200), where that time goes, memory, size.

Usage (from the repository root, after ``make image``)::

    .venv/bin/python image/measure.py                 # 5 start-ups, RSS, size
    .venv/bin/python image/measure.py --runs 3 --importtime --compressed

It builds the tests' tiny service (``image/tests/service``) FROM ``--image``, then for each run
starts a container with 2 workers and prints, in seconds after the ``docker run`` command was
issued: when ``docker run -d`` returned, when the container's process started (``State.StartedAt``),
when gunicorn's master listened, when the last worker booted, the first 200 on
``/c2c/health_check``, and the CPU time the container used until then (a figure that depends
little on the rest of the machine's load). Then the RSS and PSS of the idle gunicorn processes.
``--importtime`` prints the CPU time of gunicorn's configuration import and of the application
load, and the slowest top-level imports (``python -X importtime``). Every container and image it
creates is named ``c2cimg-measure*`` and removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
SERVICE_DIR = Path(__file__).resolve().parent / "tests" / "service"
_OK = 200
_EVENTS = (("master listens", "Listening at"), ("last worker booted", "Booting worker"))


def _docker(*args: str, check: bool = True) -> str:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check, timeout=300).stdout


def _epoch(stamp: str) -> float:
    """Seconds since the epoch of a Docker RFC 3339 timestamp with nanoseconds."""
    date, _, fraction = stamp.rstrip("Z").partition(".")
    moment = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC)
    return moment.timestamp() + float("0." + (fraction or "0"))


def _wait_ready(url: str, limit: float = 30) -> float:
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310  # local URL
                if response.status == _OK:
                    return time.time()
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.01)
    raise SystemExit(f"{url} did not answer 200 within {limit} s")


def _log_events(name: str, started: float) -> dict[str, float]:
    """Offsets of the last log line matching each event (docker's reception timestamps)."""
    logs = subprocess.run([DOCKER, "logs", "--timestamps", name], capture_output=True, text=True, check=True)
    events: dict[str, float] = {}
    for line in (logs.stdout + logs.stderr).splitlines():
        stamp, _, text = line.partition(" ")
        for label, needle in _EVENTS:
            if needle in text:
                events[label] = _epoch(stamp) - started
    return events


def _one_run(image: str, extra: list[str]) -> tuple[str, dict[str, float]]:
    name = f"c2cimg-measure-{uuid.uuid4().hex[:10]}"
    options = ["--env", "GUNICORN_WORKERS=2", "--env", "GUNICORN_LOG_LEVEL=INFO", *extra]
    started = time.time()
    _docker("run", "--detach", "--name", name, "--publish", "127.0.0.1::8080", *options, image)
    returned = time.time() - started
    port = _docker("port", name, "8080/tcp").split()[0].rsplit(":", 1)[1]
    ready = _wait_ready(f"http://127.0.0.1:{port}/c2c/health_check") - started
    cpu = _cpu_seconds(name)
    process = _epoch(_docker("inspect", "--format", "{{.State.StartedAt}}", name).strip()) - started
    figures = {"docker run returned": returned, "process started": process}
    figures.update(_log_events(name, started))
    figures["first 200"] = ready
    figures["CPU s used"] = cpu
    return name, figures


def _cpu_seconds(name: str) -> float:
    """CPU time used by the container so far (cgroup v2 ``cpu.stat``, else v1 ``cpuacct.usage``).

    Unlike the wall-clock figures, it barely depends on what else the machine is doing.
    """
    script = "cat /sys/fs/cgroup/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpuacct/cpuacct.usage"
    text = _docker("exec", name, "sh", "-c", script)
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1e6
    return int(text.split()[0]) / 1e9


def _memory(name: str) -> str:
    script = (
        "for p in /proc/[0-9]*; do grep -q bin/gunicorn $p/cmdline 2>/dev/null || continue; "
        "test $p = /proc/$$ && continue; "
        "echo $(awk '/^(Rss|Pss):/ {print $2}' $p/smaps_rollup); done"
    )
    rows = [line.split() for line in _docker("exec", name, "sh", "-c", script).splitlines() if line.strip()]
    rss = [int(row[0]) // 1024 for row in rows]
    pss = sum(int(row[1]) for row in rows) // 1024
    return f"gunicorn processes RSS {' + '.join(map(str, rss))} = {sum(rss)} MB, PSS {pss} MB"


_LOAD = (
    "import time; t0 = time.process_time(); import c2cwsgiutils.gunicorn_config as g; "
    "t1 = time.process_time(); g.load_paste_app('c2c:///app/production.ini'); t2 = time.process_time(); "
    "print(f'CPU s: gunicorn_config import {t1 - t0:.3f}, application load {t2 - t1:.3f}')"
)


def _importtime(image: str) -> None:
    """CPU time of the configuration import and of the application load, and the slowest imports."""
    for _ in range(3):
        print("  " + _docker("run", "--rm", image, "python", "-c", _LOAD).strip())
    result = subprocess.run(
        [DOCKER, "run", "--rm", image, "python", "-X", "importtime", "-c", _LOAD],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, module = line.removeprefix("import time:").split("|")
        if not module.startswith("  "):  # imported by the code run, not by another module
            rows.append((int(cumulative), module.strip()))
    print(
        "slowest top-level imports while loading the application (ms, cumulative, inflated by -X importtime):"
    )
    for cumulative, module in sorted(rows, reverse=True)[:15]:
        print(f"  {cumulative / 1000:7.1f}  {module}")


def main() -> None:
    """Build the service, measure, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--image", default=os.environ.get("IMAGE", "c2cwsgiutils:latest"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--importtime", action="store_true", help="slowest imports in the image")
    parser.add_argument("--compressed", action="store_true", help="also docker save | gzip | wc -c")
    parser.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the service")
    parser.add_argument(
        "--volume",
        action="append",
        default=[],
        help="extra docker run --volume, e.g. a gunicorn.conf.py to try",
    )
    args = parser.parse_args()

    tag = f"c2cimg-measure:{uuid.uuid4().hex[:10]}"
    subprocess.run(
        [DOCKER, "build", "--quiet", "--build-arg", f"IMAGE={args.image}", "--tag", tag, str(SERVICE_DIR)],
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )
    names: list[str] = []
    try:
        readies, cpus = [], []
        extra = [option for value in args.env for option in ("--env", value)]
        extra += [option for value in args.volume for option in ("--volume", value)]
        for run in range(args.runs):
            name, figures = _one_run(tag, extra)
            names.append(name)
            readies.append(figures["first 200"])
            cpus.append(figures["CPU s used"])
            print(f"run {run + 1}: " + ", ".join(f"{label} {value:.2f}" for label, value in figures.items()))
            if run < args.runs - 1:
                _docker("rm", "--force", name)
        median = statistics.median(readies)
        print(f"first 200: median {median:.2f} s, min {min(readies):.2f}, max {max(readies):.2f}")
        print(f"CPU used until the first 200: median {statistics.median(cpus):.2f} s")
        time.sleep(3)
        print(_memory(names[-1]))
        if args.importtime:
            _importtime(tag)
        size = int(_docker("image", "inspect", "--format", "{{.Size}}", args.image))
        print(f"{args.image}: {size:,} bytes uncompressed".replace(",", " "))
        if args.compressed:
            save = subprocess.Popen([DOCKER, "save", args.image], stdout=subprocess.PIPE)
            gzip = subprocess.run(["gzip"], stdin=save.stdout, capture_output=True, check=True)
            save.wait()
            print(f"docker save {args.image} | gzip: {len(gzip.stdout):,} bytes".replace(",", " "))
    finally:
        for name in names:
            _docker("rm", "--force", name, check=False)
        _docker("image", "rm", "--force", tag, check=False)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
