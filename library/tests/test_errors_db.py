"""Database errors caused by the client's data, through a real gunicorn and a real PostgreSQL.

In production mode (``DEVELOPMENT=0``) they answer 400 with the database's primary message, which
clients show or match, and nothing of the statement, its parameters or the ``DETAIL`` line. With
the latest dependencies the driver is psycopg 3, with the lowest ones psycopg2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from _gunicorn import gunicorn, wait_answering

pytestmark = pytest.mark.server

_SECRET_NAME = "dup-secret-value"
_DUPLICATE = 'duplicate key value violates unique constraint "items_name_key"'
# Never in an answer: the statement, the parameters, the DETAIL line (other rows' values).
_LEAKS = (
    "INSERT",
    "items (",
    "[SQL",
    "parameters",
    "DETAIL",
    "Key (",
    "private-name-42",
    "LINE 1",
    "psycopg",
)


@pytest.fixture
def served(postgresql, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The application in a real gunicorn (one worker) on the ``items`` table, production mode."""
    with psycopg.connect(postgresql.url_rw, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE NOT NULL, quantity integer)"
        )
    env = {"DEVELOPMENT": "0", "C2C_ENABLE_EXCEPTION_HANDLING": "1", "SQLALCHEMY_URL": postgresql.url_rw}
    # The 400s are logged with their traceback (for the operators): SQLAlchemy's errors.
    with gunicorn("_request_id_errors_app:app", env, tmp_path, workers=1, expected_error="sqlalchemy") as url:
        wait_answering(url + "/echo", tmp_path / "gunicorn.log")
        yield url, tmp_path / "gunicorn.log"


def _error_traceback(log_path: Path, request_id: str) -> str:
    """The traceback logged with the 400 of a request (its answer was received: it is written)."""
    for line in log_path.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("request_id") == request_id and record["logger_name"] == "c2cwsgiutils.errors":
                return str(record["full_message"])
    raise AssertionError(f"no error line for {request_id}")


def _assert_client_error(response: requests.Response, message: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"] == message
    assert body["status"] == 400
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "stacktrace" not in body
    for leak in (*_LEAKS, _SECRET_NAME):
        assert leak not in response.text


@pytest.mark.parametrize("path", ["/items", "/items/commit"], ids=["in-the-view", "at-commit"])
def test_duplicate_key_answers_the_database_message(served, path):
    """A duplicate key, raised in the view or when pyramid_tm commits, is a 400 with its primary message."""
    url, log_path = served
    first = requests.post(url + path, params={"name": _SECRET_NAME}, timeout=10)
    assert first.status_code == 200, first.text

    second = requests.post(url + path, params={"name": _SECRET_NAME}, timeout=10)

    _assert_client_error(second, _DUPLICATE)
    # The case is the one named: the error comes from the commit of the transaction, or not.
    at_commit = "in commit" in _error_traceback(log_path, second.headers["X-Request-ID"])
    assert at_commit == (path == "/items/commit")


def test_bad_integer_answers_the_database_message(served):
    """A text where an integer goes is a 400 with the database's message, which quotes the value."""
    url, _ = served
    response = requests.post(url + "/items/quantity", params={"quantity": "abc"}, timeout=10)

    _assert_client_error(response, 'invalid input syntax for type integer: "abc"')
