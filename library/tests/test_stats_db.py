from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from c2cwsgiutils.scripts import stats_db

SCRIPT = shutil.which("c2cwsgiutils-stats-db", path=str(Path(sys.executable).parent))
PROG = "c2cwsgiutils-stats-db"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@pytest.fixture
def database(postgresql):
    """``shop.items``: 5 rows, never analysed, two indexes; ``public.notes``: 3 rows, analysed."""
    with psycopg.connect(_libpq(postgresql.url_rw), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shop")
        conn.execute("CREATE TABLE shop.items (id integer PRIMARY KEY, name text)")
        conn.execute("CREATE INDEX items_name ON shop.items (name)")
        conn.execute("INSERT INTO shop.items SELECT n, 'item ' || n FROM generate_series(1, 5) AS n")
        conn.execute("CREATE TABLE public.notes (id integer PRIMARY KEY)")
        conn.execute("INSERT INTO public.notes VALUES (1), (2), (3)")
        conn.execute("ANALYZE public.notes")
    return postgresql


def _env(**extra: str) -> dict[str, str]:
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(("C2C_", "C2CWSGIUTILS_"))
    }
    env.update(extra)
    return env


def _start(*args: str, **env: str) -> subprocess.Popen[str]:
    assert SCRIPT is not None, "the console script is not installed: pip install -e library"
    return subprocess.Popen(
        [SCRIPT, *args], env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT is not None, "the console script is not installed: pip install -e library"
    return subprocess.run(
        [SCRIPT, *args], env=_env(**env), capture_output=True, text=True, timeout=60, check=False
    )


def _main(capsys, *args: str) -> tuple[int, str]:
    """Run the script's ``main`` in this process; return the exit code and the standard error."""
    try:
        stats_db.main(list(args))
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    return code, capsys.readouterr().err


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape_once(*args: str, **env: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Run the script serving one scrape on a free port, scrape it, and wait for it to exit."""
    port = _free_port()
    process = _start(*args, C2C_PROMETHEUS_PORT=str(port), **env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    stdout, stderr = process.communicate()
                    pytest.fail(f"the script did not serve the metrics:\n{stderr}")
                time.sleep(0.05)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert response.status_code == 200
    return response.text, subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _wait_index_scan(url: str) -> None:
    """Use the primary key index once, and wait until the statistics show it (they are flushed lazily)."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SELECT name FROM shop.items WHERE id = 2").fetchall()
    deadline = time.monotonic() + 15
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        while True:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT idx_scan FROM pg_stat_all_indexes WHERE indexrelname = 'items_pkey'"
            ).fetchone()
            if row is not None and row[0] >= 1:
                return
            assert time.monotonic() < deadline, "index statistics not updated"
            time.sleep(0.1)


def test_serves_one_scrape(database):
    """Counts, sizes, index sizes and usage of the given schema are served once, then the script exits."""
    _wait_index_scan(database.url_rw)
    text, result = _scrape_once(
        "--db",
        database.url_rw,
        "--schema",
        "shop",
        "--extra",
        "SELECT 'answer', 42",
        "--extra",
        "SELECT 'percent%', 0.5",
        "--extra-gauge",
        "SELECT 'all', count(*) FROM shop.items",
        "items",
        "Items in the shop",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    samples = _samples(text)
    items = (("schema", "shop"), ("table", "items"))
    assert samples["c2cwsgiutils_database_table_count", items] == 5
    assert samples["c2cwsgiutils_database_table_size", items] > 0
    # ``public`` is not added when schemas are given.
    assert not [key for key in samples if ("schema", "public") in key[1]]
    for index in ("items_pkey", "items_name"):
        labels = (("fork", "main"), ("index", index), *items)
        assert samples["c2cwsgiutils_database_table_index_size", tuple(sorted(labels))] > 0
        for action in ("scan", "read", "fetch"):
            labels = (("action", action), ("index", index), *items)
            assert ("c2cwsgiutils_database_table_index_usage", tuple(sorted(labels))) in samples
    assert (
        samples[
            "c2cwsgiutils_database_table_index_usage", (("action", "scan"), ("index", "items_pkey"), *items)
        ]
        >= 1
    )
    assert samples["c2cwsgiutils_database_extra", (("metric", "answer"),)] == 42
    assert samples["c2cwsgiutils_database_extra", (("metric", "percent%"),)] == 0.5
    assert samples["c2cwsgiutils_database_items", (("metric", "all"),)] == 5
    assert "# HELP c2cwsgiutils_database_items Items in the shop" in text


def test_public_by_default_and_prefix(database):
    """Without ``--schema`` the ``public`` schema is read; ``C2C_PROMETHEUS_PREFIX`` renames the gauges."""
    text, result = _scrape_once("--db", database.url_rw, C2C_PROMETHEUS_PREFIX="myapp_")
    assert result.returncode == 0, result.stderr
    samples = _samples(text)
    assert samples["myapp_database_table_count", (("schema", "public"), ("table", "notes"))] == 3
    assert not [key for key in samples if ("schema", "shop") in key[1]]
    assert not [key for key in samples if key[0].startswith("c2cwsgiutils_")]


class _Pushgateway:
    """A loopback HTTP server that records what the Prometheus client pushes (and fails on demand)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures = 0
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                gateway.requests.append({"method": "PUT", "path": self.path, "body": body})
                status = 500 if gateway.failures > 0 else 200
                gateway.failures -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT  # noqa: N815  # name required by BaseHTTPRequestHandler

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # overridden name
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pushgateway() -> Iterator[_Pushgateway]:
    gateway = _Pushgateway()
    yield gateway
    gateway.close()


def test_push_to_gateway(database, pushgateway):
    """With ``--prometheus-url`` the metrics are pushed once, under job ``db_counts`` and the instance key."""
    port = _free_port()
    result = _run(
        "--db",
        database.url_rw,
        "--prometheus-url",
        pushgateway.url,
        "--prometheus-instance",
        "db-1",
        C2C_PROMETHEUS_PORT=str(port),
    )
    assert result.returncode == 0, result.stderr
    assert [(r["method"], r["path"]) for r in pushgateway.requests] == [
        ("PUT", "/metrics/job/db_counts/instance/db-1")
    ]
    samples = _samples(pushgateway.requests[0]["body"])
    assert samples["c2cwsgiutils_database_table_count", (("schema", "public"), ("table", "notes"))] == 3
    # Nothing is served when pushing.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_push_is_retried(database, pushgateway):
    """A Pushgateway error is retried; the metrics are pushed once they are accepted."""
    pushgateway.failures = 1
    result = _run(
        "--db",
        database.url_rw,
        "--prometheus-url",
        pushgateway.url,
        C2CWSGIUTILS_STATS_DB_TRYNUMBER="3",
        C2CWSGIUTILS_STATS_DB_SLEEP="0.1",
    )
    assert result.returncode == 0, result.stderr
    assert [r["path"] for r in pushgateway.requests] == ["/metrics/job/db_counts"] * 2
    assert "Try 1 of 3 failed" in result.stderr


def test_failing_extra_query_is_reported_after_publishing(database, pushgateway, capsys, caplog):
    """A failing ``--extra`` query is logged, the other metrics are still pushed, and the exit code is 1."""
    code, stderr = _main(
        capsys,
        "--db",
        database.url_rw,
        "--extra",
        "SELECT nope",
        "--extra",
        "SELECT 'fine', 1",
        "--extra",
        "SELECT 'not a number', 'x'",
        "--prometheus-url",
        pushgateway.url,
    )
    assert code == 1
    assert stderr == (
        f"{PROG}: error: 2 queries failed; the first one: 'SELECT nope': column \"nope\" does not exist\n"
    )
    assert "The query 'SELECT nope' failed: column \"nope\" does not exist" in caplog.messages
    samples = _samples(pushgateway.requests[0]["body"])
    assert samples["c2cwsgiutils_database_extra", (("metric", "fine"),)] == 1
    assert ("c2cwsgiutils_database_table_count", (("schema", "public"), ("table", "notes"))) in samples


def test_retries_until_the_database_is_up(database, pushgateway):
    """The collection is retried while the database is down, then published exactly once."""
    database.stop()
    process = _start(
        "--db",
        database.url_rw,
        "--prometheus-url",
        pushgateway.url,
        C2CWSGIUTILS_STATS_DB_TRYNUMBER="100",
        C2CWSGIUTILS_STATS_DB_SLEEP="0.2",
    )
    try:
        assert process.stderr is not None
        first_line = process.stderr.readline()  # the first failed try: the database is down
        database.start()
        _, stderr = process.communicate(timeout=60)
        stderr = first_line + stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Try 1 of 100 failed" in stderr
    assert len(pushgateway.requests) == 1


@pytest.mark.parametrize(
    ("db", "schema", "message"),
    [
        (
            "not a url",
            "public",
            "invalid database URL: expected postgresql://user:password@host:port/database",
        ),
        ("sqlite:///x.db", "public", "only PostgreSQL is supported, not 'sqlite'"),
        (None, "nope", "schema not found in the database: nope"),
    ],
)
def test_configuration_errors(postgresql, db, schema, message, capsys, monkeypatch):
    """A bad URL or a missing schema gives one line on the standard error and exit code 1, at once."""
    monkeypatch.setenv("C2CWSGIUTILS_STATS_DB_SLEEP", "5")
    start = time.monotonic()
    code, stderr = _main(capsys, "--db", db or postgresql.url_rw, "--schema", schema)
    assert code == 1
    assert stderr == f"{PROG}: error: {message}\n"
    assert time.monotonic() - start < 5  # not retried


def test_invalid_environment(capsys, monkeypatch):
    """An invalid number in the environment is reported on one line."""
    monkeypatch.setenv("C2CWSGIUTILS_STATS_DB_TRYNUMBER", "many")
    code, stderr = _main(capsys, "--db", "postgresql://localhost/app")
    assert code == 1
    assert stderr.startswith(f"{PROG}: error: Invalid value for C2CWSGIUTILS_STATS_DB_TRYNUMBER: ")


def test_unreachable_database(pushgateway, capsys, caplog, monkeypatch):
    """An unreachable database is retried, then reported on one line (exit code 1); nothing is published."""
    monkeypatch.setenv("C2CWSGIUTILS_STATS_DB_TRYNUMBER", "3")
    monkeypatch.setenv("C2CWSGIUTILS_STATS_DB_SLEEP", "0.1")
    url = f"postgresql://nobody:secret@127.0.0.1:{_free_port()}/app"
    code, stderr = _main(capsys, "--db", url, "--prometheus-url", pushgateway.url)
    assert code == 1
    assert "secret" not in stderr
    assert len(stderr.splitlines()) == 1
    assert stderr.startswith(f"{PROG}: error: cannot read the database: ")
    assert stderr.endswith("(after 3 tries)\n")
    assert len([message for message in caplog.messages if "failed, trying again in 0.1s" in message]) == 2
    assert pushgateway.requests == []


def test_config_uri(database, pushgateway, tmp_path):
    """With a configuration file, logging is set up from it, with the ``name=value`` variables."""
    ini = tmp_path / "production.ini"
    ini.write_text(
        textwrap.dedent(
            """
            [app:main]
            use = call:c2cwsgiutils.testing:make_app

            [loggers]
            keys = root

            [handlers]
            keys = console

            [formatters]
            keys = custom

            [logger_root]
            level = %(LEVEL)s
            handlers = console

            [handler_console]
            class = StreamHandler
            args = (sys.stderr,)
            formatter = custom

            [formatter_custom]
            format = custom-format %(levelname)s %(message)s
            """
        ),
        encoding="utf-8",
    )
    result = _run(str(ini), "LEVEL=INFO", "--db", database.url_rw, "--prometheus-url", pushgateway.url)
    assert result.returncode == 0, result.stderr
    assert f"custom-format INFO Metrics pushed to {pushgateway.url}" in result.stderr.splitlines()
    assert len(pushgateway.requests) == 1


def test_missing_config_file(tmp_path):
    """A configuration file that cannot be read is reported on one line with exit code 1."""
    result = _run(str(tmp_path / "missing.ini"), "--db", "postgresql://localhost/app")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"{PROG}: error: cannot load the configuration {tmp_path / 'missing.ini'}: "
    )
    assert len(result.stderr.splitlines()) == 1


def test_push_fails(database, pushgateway, capsys, monkeypatch):
    """A Pushgateway that keeps failing is reported on one line after the tries."""
    monkeypatch.setenv("C2CWSGIUTILS_STATS_DB_TRYNUMBER", "2")
    monkeypatch.setenv("C2CWSGIUTILS_STATS_DB_SLEEP", "0")
    pushgateway.failures = 10
    code, stderr = _main(capsys, "--db", database.url_rw, "--prometheus-url", pushgateway.url)
    assert code == 1
    assert stderr.startswith(f"{PROG}: error: cannot push to {pushgateway.url}: HTTP Error 500")
    assert stderr.endswith("(after 2 tries)\n")
    assert len(pushgateway.requests) == 2


def test_invalid_config_vars(capsys):
    """A configuration variable that is not ``name=value`` is reported on one line."""
    code, stderr = _main(capsys, "production.ini", "oops", "--db", "postgresql://localhost/app")
    assert code == 1
    assert stderr == f"{PROG}: error: invalid configuration variable 'oops': expected name=value\n"


def test_table_that_cannot_be_counted(database, pushgateway, capsys, caplog):
    """A never-analysed table the role may not read is reported after publishing the other metrics."""
    with psycopg.connect(_libpq(database.url_rw), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.hidden (id integer)")
        conn.execute("REVOKE SELECT ON public.hidden FROM app_ro")
    code, stderr = _main(capsys, "--db", database.url_ro, "--prometheus-url", pushgateway.url)
    assert code == 1
    assert stderr == (
        f"{PROG}: error: 1 query failed; the first one: counting the rows of public.hidden: "
        "permission denied for table hidden\n"
    )
    assert "Cannot count the rows of public.hidden: permission denied for table hidden" in caplog.messages
    samples = _samples(pushgateway.requests[0]["body"])
    hidden = (("schema", "public"), ("table", "hidden"))
    assert ("c2cwsgiutils_database_table_count", hidden) not in samples
    assert ("c2cwsgiutils_database_table_size", hidden) in samples
    assert samples["c2cwsgiutils_database_table_count", (("schema", "public"), ("table", "notes"))] == 3


def test_missing_extra(capsys, monkeypatch):
    """Without the ``standard`` extra (prometheus_client), the error names the extra to install."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    code, stderr = _main(capsys, "--db", "postgresql://localhost/app")
    assert code == 1
    assert stderr == (
        f"{PROG}: error: {PROG} needs the Python package 'prometheus_client': "
        "install it with: pip install 'c2cwsgiutils[standard]'\n"
    )
