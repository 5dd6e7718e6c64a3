"""JsonLogHandler on a file descriptor: lines written in batches by a thread (c2cwsgiutils._log_writer)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from c2cwsgiutils import _log_writer
from c2cwsgiutils.pyramid_logging import DEFAULT_FLUSH_INTERVAL, JsonLogHandler

_LONG = 3600.0  # an interval no test waits for: what is written came from flush, close or back-pressure


@pytest.fixture
def log_file(tmp_path: Path):
    """A text file opened for writing (a real file descriptor) and a reader of its JSON messages."""
    path = tmp_path / "log.jsonl"
    with path.open("w", encoding="utf-8") as stream:

        def messages() -> list[str]:
            return [json.loads(line)["msg"] for line in path.read_text(encoding="utf-8").splitlines()]

        yield stream, messages


def _record(message: str) -> logging.LogRecord:
    return logging.makeLogRecord({"msg": message, "name": "c2c_test_writer", "levelno": logging.INFO})


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not written in time"
        time.sleep(0.01)


def test_lines_are_written_by_the_thread_whole_and_in_order(log_file):
    """Without any flush, the lines reach the file soon, each once, in the order of the records."""
    stream, messages = log_file
    handler = JsonLogHandler(stream, flush_interval=0.01)
    try:
        for index in range(200):
            handler.handle(_record(f"line {index}"))
        _wait_for(lambda: len(messages()) == 200)
        assert messages() == [f"line {index}" for index in range(200)]
    finally:
        handler.close()


def test_a_quiet_period_then_more_lines(log_file):
    """A line logged after a batch was written starts the next batch (nothing stays pending)."""
    stream, messages = log_file
    handler = JsonLogHandler(stream, flush_interval=0.01)
    try:
        handler.handle(_record("first"))
        _wait_for(lambda: messages() == ["first"])
        handler.handle(_record("second"))
        _wait_for(lambda: messages() == ["first", "second"])
    finally:
        handler.close()


def test_lines_wait_for_their_batch_then_flush_writes_them_at_once(log_file):
    """A record is not written by the thread that logs it; flush() writes the batch."""
    stream, messages = log_file
    handler = JsonLogHandler(stream, flush_interval=_LONG)
    handler.handle(_record("a"))
    handler.handle(_record("b"))
    assert messages() == []
    handler.flush()
    assert messages() == ["a", "b"]
    handler.close()


def test_a_batch_is_one_write(tmp_path):
    path = tmp_path / "log.jsonl"
    with path.open("w", encoding="utf-8") as real:

        class Counting:
            writes = 0

            def fileno(self) -> int:
                return real.fileno()

            def write(self, text: str) -> int:
                Counting.writes += 1
                return real.write(text)

            def flush(self) -> None:
                real.flush()

        handler = JsonLogHandler(Counting(), flush_interval=0.01)  # type: ignore[arg-type]
        for index in range(50):
            handler.handle(_record(f"line {index}"))
        _wait_for(lambda: len(path.read_text().splitlines()) == 50)
        assert Counting.writes == 1
        handler.close()


def test_close_writes_the_pending_lines_and_later_records_are_synchronous(log_file):
    stream, messages = log_file
    handler = JsonLogHandler(stream, flush_interval=_LONG)
    handler.handle(_record("before close"))
    assert messages() == []
    handler.close()
    assert messages() == ["before close"]
    handler.handle(_record("after close"))
    assert messages() == ["before close", "after close"]


def test_an_interval_of_zero_writes_each_record_before_emit_returns(log_file, monkeypatch):
    stream, messages = log_file
    monkeypatch.setenv("C2C_LOG_FLUSH_INTERVAL", "0")
    handler = JsonLogHandler(stream)
    handler.handle(_record("now"))
    assert messages() == ["now"]
    handler.close()


def test_an_in_memory_stream_is_written_at_once():
    """No system call to save on a StringIO: the line is there when ``emit`` returns."""
    import io

    stream = io.StringIO()
    handler = JsonLogHandler(stream, flush_interval=_LONG)
    handler.handle(_record("in memory"))
    assert json.loads(stream.getvalue())["msg"] == "in memory"


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf"])
def test_a_bad_interval_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("C2C_LOG_FLUSH_INTERVAL", value)
    from pyramid.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"C2C_LOG_FLUSH_INTERVAL: must be a number of seconds"):
        JsonLogHandler(sys.stderr)


def test_a_bad_handler_interval_is_a_clear_error():
    with pytest.raises(ValueError, match=r"flush_interval must be a number of seconds >= 0, got 'x'"):
        JsonLogHandler(sys.stderr, flush_interval="x")


def test_by_default_a_line_is_written_when_it_is_logged(monkeypatch, log_file):
    """Without C2C_LOG_FLUSH_INTERVAL, the line is in the file before ``emit`` returns (no batch)."""
    stream, _ = log_file
    monkeypatch.delenv("C2C_LOG_FLUSH_INTERVAL", raising=False)
    handler = JsonLogHandler(stream)
    assert handler._flush_interval == DEFAULT_FLUSH_INTERVAL == 0
    handler.handle(logging.makeLogRecord({"msg": "written now", "levelno": logging.INFO}))
    with open(stream.name, encoding="utf-8") as written:
        assert '"msg":"written now"' in written.read()
    handler.close()


def test_memory_is_bounded_the_caller_writes_a_full_batch(log_file, monkeypatch):
    """Past the pending limit, the logging thread writes the batch itself (back-pressure)."""
    stream, messages = log_file
    monkeypatch.setattr(_log_writer, "_MAX_PENDING", 10_000)
    handler = JsonLogHandler(stream, flush_interval=_LONG)
    big = "x" * 4000
    for index in range(2):
        handler.handle(_record(f"{index} {big}"))
    assert messages() == []  # under the limit: pending
    handler.handle(_record(f"2 {big}"))
    assert [message.split()[0] for message in messages()] == ["0", "1", "2"]
    handler.close()


def test_set_stream_writes_the_pending_lines_to_the_previous_stream(tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    with first.open("w", encoding="utf-8") as stream1, second.open("w", encoding="utf-8") as stream2:
        handler = JsonLogHandler(stream1, flush_interval=_LONG)
        handler.handle(_record("to the first"))
        assert first.read_text() == ""
        assert handler.setStream(stream2) is stream1
        handler.handle(_record("to the second"))
        handler.flush()
        assert [json.loads(line)["msg"] for line in first.read_text().splitlines()] == ["to the first"]
        assert [json.loads(line)["msg"] for line in second.read_text().splitlines()] == ["to the second"]
        handler.close()


def test_a_forked_child_does_not_write_its_parents_pending_lines(log_file):
    stream, messages = log_file
    handler = JsonLogHandler(stream, flush_interval=_LONG)
    handler.handle(_record("parent"))
    pid = os.fork()
    if pid == 0:  # the child: its own line only, written at its exit
        try:
            handler.handle(_record("child"))
            handler.flush()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert messages() == ["child"]
    handler.flush()
    assert messages() == ["child", "parent"]
    handler.close()


def test_a_failed_batch_is_reported_and_the_next_one_written(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    with path.open("w", encoding="utf-8") as real:

        class FailsOnce:
            failed = False

            def fileno(self) -> int:
                return real.fileno()

            def write(self, text: str) -> int:
                if not FailsOnce.failed:
                    FailsOnce.failed = True
                    raise OSError("disk full")
                return real.write(text)

            def flush(self) -> None:
                real.flush()

        handler = JsonLogHandler(FailsOnce(), flush_interval=0.01)  # type: ignore[arg-type]
        handler.handle(_record("lost"))
        _wait_for(lambda: FailsOnce.failed and "disk full" in capsys.readouterr().err)
        handler.handle(_record("written"))
        _wait_for(lambda: path.read_text() != "")
        assert [json.loads(line)["msg"] for line in path.read_text().splitlines()] == ["written"]
        handler.close()


def test_pending_lines_are_written_when_the_process_exits():
    """logging.shutdown (at exit) writes what the thread had not written yet."""
    code = textwrap.dedent(
        """
        import logging, sys
        from c2cwsgiutils.pyramid_logging import JsonLogHandler
        logging.basicConfig(level=logging.INFO, handlers=[JsonLogHandler(sys.stdout, flush_interval=3600)])
        for index in range(500):
            logging.getLogger("exit").info("line %d", index)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert [json.loads(line)["msg"] for line in result.stdout.splitlines()] == [
        f"line {index}" for index in range(500)
    ]


def test_a_file_that_cannot_write_utf8_gets_escaped_lines(tmp_path):
    """The batch is escaped to ASCII, line by line (a U+2028 inside a message is not a line break)."""
    path = tmp_path / "ascii.jsonl"
    with path.open("w", encoding="ascii") as stream:
        handler = JsonLogHandler(stream, flush_interval=_LONG)
        handler.handle(_record("café"))
        handler.handle(_record("one\u2028two"))
        handler.flush()
        lines = path.read_text(encoding="ascii").splitlines()
        assert [json.loads(line)["msg"] for line in lines] == ["café", "one\u2028two"]
        handler.close()


def test_without_a_thread_the_lines_are_written_at_once(log_file, monkeypatch):
    """When no thread can start (interpreter shutdown, thread limit), writes become synchronous."""
    stream, messages = log_file

    def cannot_start(self) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(_log_writer.threading.Thread, "start", cannot_start)
    handler = JsonLogHandler(stream, flush_interval=_LONG)
    handler.handle(_record("first"))
    assert messages() == ["first"]
    handler.handle(_record("second"))
    assert messages() == ["first", "second"]
    handler.close()
