"""A real PostgreSQL server for the tests (pytest plugin, registered from ``conftest.py``).

The session-scoped fixture ``postgresql_server`` starts a throw-away cluster with the server binaries
of ``/usr/lib/postgresql/<version>/bin`` (as the ``postgres`` user when the tests run as root), on a free
loopback port with ``fsync=off``. It creates:

- the database ``app`` owned by the role ``app_rw`` (read/write, the "primary" URL ``url_rw``);
- the role ``app_ro`` with SELECT-only grants (default privileges included) and
  ``default_transaction_read_only=on`` (the "replica" URL ``url_ro``): any write through it fails loudly.

``stop()`` / ``start()`` simulate the database going down and coming back (same port). When the
environment variables ``PG_TEST_URL_RW`` and ``PG_TEST_URL_RO`` are set, those existing servers are used
instead and the fault tests that need ``stop()`` are skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import psycopg
import pytest

_BIN_GLOB = "/usr/lib/postgresql/*/bin/initdb"
_TABLE_OWNER = "app_rw"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A PostgreSQL server the tests may stop and start again."""

    def __init__(self, url_rw: str, url_ro: str, port: int, *, admin_url: str | None = None) -> None:
        """Describe a running server.

        Args:
            url_rw: SQLAlchemy URL of the read/write role (the primary).
            url_ro: SQLAlchemy URL of the read-only role (the replica).
            port: TCP port on 127.0.0.1.
            admin_url: superuser URL, None for external servers.
        """
        self.url_rw = url_rw
        self.url_ro = url_ro
        self.port = port
        self.admin_url = admin_url
        self.managed = False
        self.log_path: str | None = None

    def stop(self) -> None:
        """Stop the server (only for the servers started by the fixture)."""
        pytest.skip("external PostgreSQL server (PG_TEST_URL_RW): cannot stop it")

    def start(self) -> None:
        """Start the server again."""
        pytest.skip("external PostgreSQL server (PG_TEST_URL_RW): cannot start it")

    def reset(self) -> None:
        """Drop every table, view, sequence and non-system schema created by the tests."""
        with psycopg.connect(_libpq(self.url_rw), autocommit=True) as conn:
            schemas = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspowner = (SELECT oid FROM pg_roles "
                "WHERE rolname = current_user) AND nspname <> 'public'"
            ).fetchall()
            for (schema,) in schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"
            ).fetchall()
            for (table,) in tables:
                conn.execute(f'DROP TABLE IF EXISTS public."{table}" CASCADE')


class _ManagedServer(PostgresServer):
    def __init__(self, bindir: str, directory: str, port: int) -> None:
        host = "127.0.0.1"
        super().__init__(
            f"postgresql://app_rw@{host}:{port}/app",
            f"postgresql://app_ro@{host}:{port}/app",
            port,
            admin_url=f"postgresql://postgres@{host}:{port}/postgres",
        )
        self.managed = True
        self.bindir = bindir
        self.directory = directory
        self.datadir = os.path.join(directory, "data")
        self.log_path = os.path.join(directory, "server.log")

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            log = ""
            if self.log_path and os.path.exists(self.log_path):
                with open(self.log_path, encoding="utf-8", errors="replace") as log_file:
                    log = log_file.read()[-3000:]
            raise RuntimeError(f"{command} failed:\n{result.stdout}\n{result.stderr}\n{log}")

    def init(self) -> None:
        self._run(
            os.path.join(self.bindir, "initdb"),
            "-D",
            self.datadir,
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c log_line_prefix='%a %u ' -c log_min_messages=warning"
        )
        self._run(
            os.path.join(self.bindir, "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            self.datadir,
            "-l",
            str(self.log_path),
            "-o",
            options,
        )

    def stop(self) -> None:
        self._run(
            os.path.join(self.bindir, "pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast", "-D", self.datadir
        )

    def is_running(self) -> bool:
        return os.path.exists(os.path.join(self.datadir, "postmaster.pid"))

    def create_roles(self) -> None:
        assert self.admin_url is not None
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute("CREATE ROLE app_rw LOGIN")
            conn.execute("CREATE ROLE app_ro LOGIN")
            conn.execute("ALTER ROLE app_ro SET default_transaction_read_only = on")
            conn.execute("CREATE DATABASE app OWNER app_rw")
        with psycopg.connect(_libpq(self.admin_url.rsplit("/", 1)[0] + "/app"), autocommit=True) as conn:
            conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            conn.execute("GRANT ALL ON SCHEMA public TO app_rw")
            conn.execute("GRANT CONNECT ON DATABASE app TO app_ro")
            conn.execute("GRANT USAGE ON SCHEMA public TO app_ro")
            conn.execute("ALTER DEFAULT PRIVILEGES FOR ROLE app_rw GRANT SELECT ON TABLES TO app_ro")
            conn.execute("ALTER DEFAULT PRIVILEGES FOR ROLE app_rw GRANT SELECT ON SEQUENCES TO app_ro")
            conn.execute("ALTER DEFAULT PRIVILEGES FOR ROLE app_rw GRANT USAGE ON SCHEMAS TO app_ro")


def _libpq(url: str) -> str:
    """Turn a SQLAlchemy URL into a libpq one (drop the ``+driver`` part)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgresql") else url


def wait_until_ready(url: str, timeout: float = 30) -> None:
    """Wait until a connection succeeds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(_libpq(url), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server with a read/write and a read-only URL on the database ``app``."""
    url_rw, url_ro = os.environ.get("PG_TEST_URL_RW"), os.environ.get("PG_TEST_URL_RO")
    if url_rw and url_ro:
        port = psycopg.conninfo.conninfo_to_dict(_libpq(url_rw)).get("port") or 5432
        yield PostgresServer(url_rw, url_ro, int(port))
        return
    candidates = sorted(glob.glob(_BIN_GLOB))
    if not candidates:
        pytest.fail("PostgreSQL server binaries not found (install the Debian package 'postgresql')")
    bindir = os.path.dirname(candidates[-1])
    directory = tempfile.mkdtemp(prefix="c2c-pg-")
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    server = _ManagedServer(bindir, directory, _free_port())
    try:
        server.init()
        server.start()
        wait_until_ready(str(server.admin_url))
        server.create_roles()
        yield server
    finally:
        if server.is_running():
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgresql(postgresql_server: PostgresServer) -> Iterator[PostgresServer]:
    """The session server, running, with the tables of the previous test dropped."""
    if isinstance(postgresql_server, _ManagedServer) and not postgresql_server.is_running():
        postgresql_server.start()
    wait_until_ready(postgresql_server.url_rw)
    postgresql_server.reset()
    yield postgresql_server
    if isinstance(postgresql_server, _ManagedServer) and not postgresql_server.is_running():
        postgresql_server.start()
