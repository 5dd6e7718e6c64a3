"""A real preloaded gunicorn with several workers on 127.0.0.1, for the multi-process tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

START_TIMEOUT = 30.0


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(
    app: str, env: Mapping[str, str], tmp_path: Path, workers: int = 2, expected_error: str | None = None
) -> Iterator[str]:
    """Serve ``app`` (``module:variable`` of the tests directory); yield its base URL, always stop it.

    Once the server is stopped, its output must hold no traceback, except the ones that mention
    ``expected_error`` (errors the test provokes on purpose).
    """
    port = free_port()
    full_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).parent),
        **env,
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "--preload", "--workers", str(workers)]
    command += ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", app]
    # The output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the workers.
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
    output = log_path.read_text(encoding="utf-8", errors="replace")
    for traceback in output.split("Traceback (most recent call last)")[1:]:
        assert expected_error is not None, output
        assert expected_error in traceback, output


def wait_answering(url: str, log_path: Path, timeout: float = START_TIMEOUT) -> None:
    """Wait until ``url`` answers (any status); fail with the server's log after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=10)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, log_path.read_text(encoding="utf-8", errors="replace")
            time.sleep(0.1)
        else:
            return


def get_retrying(
    get: Callable[..., requests.Response], url: str, retries: list[str], attempts: int = 5, **kwargs: Any
) -> requests.Response:
    """``get(url, **kwargs)``, again when the connection is reset or left unanswered.

    gunicorn 23 may do either to a kept-alive or queued connection of a worker it recycles
    (``max_requests``), as a client then sees; a client retries. Each retried URL is appended to
    ``retries``: its request may have been served twice.
    """
    for attempt in range(attempts):
        try:
            return get(url, **kwargs)
        except (requests.ConnectionError, requests.Timeout):
            if attempt == attempts - 1:
                raise
            retries.append(url)
    raise AssertionError("unreachable")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn as a container runtime does: SIGTERM, then SIGKILL after 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def each_worker(
    call: Callable[[], Mapping[str, Any]], workers: int = 2, timeout: float = START_TIMEOUT
) -> dict[int, Mapping[str, Any]]:
    """Call ``call`` (one request answering ``{"pid": ...}``) until every worker answered once.

    Connection errors (server still starting) are retried until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    seen: dict[int, Mapping[str, Any]] = {}
    while len(seen) < workers:
        assert time.monotonic() < deadline, f"only the workers {sorted(seen)} answered"
        try:
            answer = call()
        except requests.ConnectionError:
            time.sleep(0.1)
            continue
        seen.setdefault(int(answer["pid"]), answer)
    return seen
