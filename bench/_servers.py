"""The processes of the benchmark: PostgreSQL, Redis and the gunicorn services (all on 127.0.0.1).

PostgreSQL and Redis reuse the helpers of the library's test suite (``library/tests/_postgres.py``
and ``library/tests/_redis.py``, imported by path): a throw-away cluster started with initdb/pg_ctl
(as the ``postgres`` user when run as root) and a ``redis-server``, each on a free loopback port in
a temporary directory. :class:`Stack` starts them and stops every process in ``__exit__``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

__all__ = ["Gunicorn", "ServeOptions", "Stack", "free_port", "rss_kib"]

_HERE = Path(__file__).resolve().parent
_TESTS = _HERE.parent / "library" / "tests"
_VENV_BIN = Path(sys.executable).parent
_READY_TIMEOUT = 30.0


def round_order(round_number: int, names: Sequence[str] = ("bare", "c2c")) -> list[str]:
    """The variants in the order of a round: as given in odd rounds, reversed in even ones."""
    return list(names) if round_number % 2 else list(reversed(names))


def _load(name: str) -> types.ModuleType:
    """Import a helper of the library's test suite by path."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", _TESTS / f"{name}.py")
    if spec is None or spec.loader is None:
        msg = f"Cannot load {_TESTS / name}.py"
        raise ImportError(msg)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_postgres = _load("_postgres")
_redis = _load("_redis")
free_port = _postgres._free_port  # noqa: SLF001  # the test helper's free-port function, reused


def _sqlalchemy_url(url: str) -> str:
    """Use the psycopg (3) driver: ``postgresql://`` would pick psycopg2, which is not installed."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


class Gunicorn:
    """One gunicorn process (gthread workers) serving a variant of ``services.py``.

    - ``bare``: ``gunicorn 'services:make_app("bare")'`` with gunicorn's text access log;
    - ``c2c``: ``gunicorn -c gunicorn_c2c.conf.py``: the library's gunicorn settings with
      ``production.ini`` (client_info filter, JSON logs and access log, Prometheus multiprocess
      metrics in a directory of the stack, served by the master on ``metrics_port``).
    """

    def __init__(self, variant: str, env: dict[str, str], options: ServeOptions, log_dir: Path) -> None:
        """Start it and wait (bounded) until ``options.ready_path`` answers 200.

        Args:
            variant: ``bare`` or ``c2c``.
            env: Environment variables of the service (database and Redis URLs).
            options: Worker and thread counts, path polled for readiness.
            log_dir: Directory of its log file (and of the c2c variant's metrics directory).
        """
        self.variant = variant
        self.port = free_port()
        self.metrics_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"gunicorn-{variant}-{self.port}.log"
        command = [str(_VENV_BIN / "gunicorn"), "--chdir", str(_HERE)]
        service_env = {**os.environ, **env, **dict(options.env)}
        if variant == "c2c":
            metrics_dir = log_dir / f"metrics-{self.port}"
            metrics_dir.mkdir()
            command += ["-c", str(_HERE / "gunicorn_c2c.conf.py")]
            service_env.update(
                C2CWSGIUTILS_CONFIG=str(_HERE / "production.ini"),
                BENCH_BIND=f"127.0.0.1:{self.port}",
                BENCH_WORKERS=str(options.workers),
                BENCH_THREADS=str(options.threads),
                PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                C2C_PROMETHEUS_PORT=str(self.metrics_port),
            )
        else:
            command += ["--bind", f"127.0.0.1:{self.port}", "--workers", str(options.workers)]
            command += ["--worker-class", "gthread", "--threads", str(options.threads)]
            command += ["--log-level", "warning", "--access-logfile", "-", f'services:make_app("{variant}")']
        self.started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=service_env)
        self.startup_seconds = self._wait_ready(options.ready_path)

    def _wait_ready(self, path: str) -> float:
        """Poll ``path`` every 10 ms until it answers 200; return the seconds since the start."""
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                break
            url = self.base_url + path
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  # http://127.0.0.1 only
                if response.status == 200:  # noqa: PLR2004  # HTTP OK
                    return time.monotonic() - self.started
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        log = self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        self.stop()
        msg = f"gunicorn ({self.variant}) did not answer within {_READY_TIMEOUT} s:\n{log}"
        raise RuntimeError(msg)

    def worker_pids(self) -> list[int]:
        """The pids of the master's children (the workers)."""
        children: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(pid) for pid in (task / "children").read_text().split()]
        return sorted(children)

    def stop(self) -> None:
        """Stop gunicorn (SIGTERM, then SIGKILL after 10 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def rss_kib(pid: int) -> int:
    """Resident set size of a process (``VmRSS`` of ``/proc/<pid>/status``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    msg = f"No VmRSS for the process {pid}"
    raise RuntimeError(msg)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of all the threads of a process so far (``/proc/<pid>/stat``)."""
    # The fields after the command name, which is in parentheses and may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def voluntary_switches(pid: int) -> int:
    """Voluntary context switches of all the threads of a process so far (``/proc/<pid>/task``)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How a service is started."""

    threads: int = 8
    workers: int = 1
    ready_path: str = "/items"
    env: tuple[tuple[str, str], ...] = ()  # more environment variables of the service


class Stack(contextlib.AbstractContextManager["Stack"]):
    """PostgreSQL (primary and read-only roles), optional Redis and the gunicorn services."""

    def __init__(self, *, with_redis: bool = True) -> None:
        """Describe the stack; ``__enter__`` starts the databases.

        Args:
            with_redis: Start a ``redis-server`` and give its URL to the services.
        """
        self.with_redis = with_redis
        self.directory = Path(tempfile.mkdtemp(prefix="c2c-bench-"))
        self._postgres: Any = None
        self._pg_dir: str | None = None
        self._redis: Any = None
        self._services: list[Gunicorn] = []
        self.env: dict[str, str] = {}

    def __enter__(self) -> Self:
        """Start PostgreSQL (and Redis), create and fill the ``item`` table."""
        try:
            self._start_postgres()
            if self.with_redis:
                self._redis = _redis.RedisProcess("redis-server", "")
                self.env["BENCH_REDIS_URL"] = self._redis.url
        except BaseException:
            self.close()
            raise
        return self

    def _start_postgres(self) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not candidates:
            msg = "PostgreSQL server binaries not found (apt-get install postgresql)"
            raise RuntimeError(msg)
        # Its own temporary directory: the postgres user cannot enter ours (mode 0700).
        pg_dir = tempfile.mkdtemp(prefix="c2c-bench-pg-")
        self._pg_dir = pg_dir
        if os.geteuid() == 0:
            shutil.chown(pg_dir, "postgres", "postgres")
        self._postgres = _postgres._ManagedServer(os.path.dirname(candidates[-1]), pg_dir, free_port())  # noqa: SLF001  # the test helper's server class, reused
        self._postgres.init()
        self._postgres.start()
        _postgres.wait_until_ready(self._postgres.admin_url)
        self._postgres.create_roles()
        import psycopg

        with psycopg.connect(self._postgres.url_rw, autocommit=True) as conn:
            conn.execute("CREATE TABLE item (id integer PRIMARY KEY, name text NOT NULL)")
            conn.execute("INSERT INTO item SELECT i, 'item ' || i FROM generate_series(1, 100) AS i")
            conn.execute("ANALYZE item")
        self.env["BENCH_DB_RW"] = _sqlalchemy_url(self._postgres.url_rw)
        self.env["BENCH_DB_RO"] = _sqlalchemy_url(self._postgres.url_ro)

    def serve(self, variant: str, options: ServeOptions) -> Gunicorn:
        """Start a gunicorn service of ``variant``; it is stopped with the stack (or by ``stop``)."""
        service = Gunicorn(variant, self.env, options, self.directory)
        self._services.append(service)
        return service

    def pg_activity(self) -> dict[str, dict[str, int]]:
        """Connections of each variant in ``pg_stat_activity``: ``{variant: {state: count}}``."""
        import psycopg

        query = (
            "SELECT application_name, coalesce(state, ''), count(*) FROM pg_stat_activity "
            "WHERE application_name LIKE 'bench_%' GROUP BY 1, 2"
        )
        result: dict[str, dict[str, int]] = {}
        with psycopg.connect(self._postgres.admin_url, autocommit=True) as conn:
            for name, state, count in conn.execute(query):
                result.setdefault(name.removeprefix("bench_"), {})[state] = count
        return result

    def close(self) -> None:
        """Stop every process started, then remove the temporary directory."""
        for service in self._services:
            with contextlib.suppress(Exception):
                service.stop()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                self._redis.destroy()
        if self._postgres is not None and self._postgres.is_running():
            with contextlib.suppress(Exception):
                self._postgres.stop()
        if self._pg_dir is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __exit__(self, *exc_info: object) -> None:
        """Stop everything."""
        self.close()
