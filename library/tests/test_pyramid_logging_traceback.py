"""The traceback of ``full_message`` is the standard library's text (``Formatter.formatException``)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable

import pytest

from c2cwsgiutils import pyramid_logging

_STDLIB = logging.Formatter()


def _recurse(depth: int) -> None:
    _recurse(depth + 1)


def _subscript(data: dict[str, dict[str, int]]) -> int:
    return data["a"]["b"]


def _caused() -> None:
    try:
        _subscript({"a": {}})
    except KeyError as error:
        raise ValueError("the order cannot be read") from error


def _context() -> None:
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        raise ValueError("while handling") from None


def _context_kept() -> None:
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        raise ValueError("while handling")  # noqa: B904  # the implicit context is what is tested


def _group() -> None:
    raise ExceptionGroup("several", [ValueError("a"), TypeError("b")])


def _cycle() -> None:
    first, second = ValueError("first"), TypeError("second")
    first.__context__, second.__context__ = second, first
    raise first


def _noted() -> None:
    error = KeyError("key")
    error.add_note("a note")
    raise error


def _syntax() -> None:
    exec("x = (1,")  # a SyntaxError with its own formatting


CASES: list[Callable[[], None]] = [
    lambda: _recurse(0),
    lambda: _subscript({"a": {}}),
    _caused,
    _context,
    _context_kept,
    _group,
    _cycle,
    _noted,
    _syntax,
]


def _exc_info(function: Callable[[], None]) -> object:
    try:
        function()
    except BaseException:  # every kind of exception is collected
        return sys.exc_info()
    raise AssertionError


def _full_message(exc_info: object) -> str:
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), exc_info)  # type: ignore[arg-type]
    full_message: str = json.loads(pyramid_logging.serialize(record))["full_message"]
    assert full_message.startswith("failed\n")
    return full_message.removeprefix("failed\n")


@pytest.mark.parametrize("function", CASES)
def test_same_text_as_the_standard_library(function: Callable[[], None]) -> None:
    """Recursion, ^^^ markers, chains, groups, cycles, notes, SyntaxError: identical text, twice."""
    exc_info = _exc_info(function)
    for _ in range(2):
        assert _full_message(exc_info) == _STDLIB.formatException(exc_info)  # type: ignore[arg-type]


def test_traceback_limit_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sys.tracebacklimit`` shortens the traceback as it does for the standard library."""
    exc_info = _exc_info(lambda: _recurse(0))
    _full_message(exc_info)
    monkeypatch.setattr(sys, "tracebacklimit", 2, raising=False)
    plain = _full_message(exc_info)
    assert plain == _STDLIB.formatException(exc_info)  # type: ignore[arg-type]
    assert plain.count('  File "') == 2


def test_secret_in_the_message_of_a_traceback_is_masked() -> None:
    """Same frames, different messages: each record's exception line is redacted on its own."""
    records = []
    for secret in ("s3cret", "t0ken"):
        try:
            raise RuntimeError(f"failed with secret={secret}")  # noqa: TRY301  # the traceback is tested
        except RuntimeError:
            records.append(logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()))
    lines = [json.loads(pyramid_logging.serialize(record)) for record in records]
    for line, record in zip(lines, records, strict=True):
        assert line["full_message"].endswith("RuntimeError: failed with secret=***")
        # The record keeps the plain text for the other handlers, as logging.Formatter caches it.
        assert record.exc_text == _STDLIB.formatException(record.exc_info)  # type: ignore[arg-type]
    assert "s3cret" not in json.dumps(lines)
    assert "t0ken" not in json.dumps(lines)


def test_serialize_newline() -> None:
    """``newline=True`` gives the same document followed by one line feed."""
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", (), None)
    assert pyramid_logging.serialize(record, newline=True) == pyramid_logging.serialize(record) + b"\n"
