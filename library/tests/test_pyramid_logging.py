from __future__ import annotations

import io
import json
import logging
import math
import os
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2cwsgiutils import _context
from c2cwsgiutils._json_record import PROTECTED_FIELDS
from c2cwsgiutils._redact import redact
from c2cwsgiutils.pyramid_logging import JsonLogHandler, PyramidCeeSysLogHandler, serialize

_STANDARD = set(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


@pytest.fixture
def json_log():
    """A logger writing through a JsonLogHandler into a StringIO; returns (logger, lines())."""
    stream = io.StringIO()
    handler = JsonLogHandler(stream)
    logger = logging.getLogger("c2c_test_json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    def lines():
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield logger, lines, stream
    logger.removeHandler(handler)


def test_fields_of_a_plain_record(json_log):
    """A record gives one JSON line with the reference's fields and the extras."""
    logger, lines, stream = json_log
    logger.info("hello %s", "world", extra={"referrer": "https://example.com/", "count": 3})
    assert stream.getvalue().count("\n") == 1
    (line,) = lines()
    assert line["msg"] == "hello world"
    assert line["host"] == socket.getfqdn()
    assert line["level"] == 6
    assert line["level_name"] == "INFO"
    assert line["logger_name"] == line["source_facility"] == "c2c_test_json"
    assert line["file"] == __file__
    assert line["function"] == "test_fields_of_a_plain_record"
    assert isinstance(line["line"], int)
    assert line["pid"] == os.getpid()
    assert line["thread_name"] == threading.current_thread().name
    assert line["process_name"] == "MainProcess"
    assert isinstance(line["timestamp"], float)
    assert line["referrer"] == "https://example.com/"
    assert line["count"] == 3
    assert "full_message" not in line
    assert "full_msg" not in line
    assert "request_id" not in line


def test_traceback_gives_full_message(json_log):
    """An exception adds ``full_message`` (message and traceback) and ``full_msg``."""
    logger, lines, _ = json_log
    try:
        raise ValueError("boom")  # noqa: TRY301  # the traceback is what is tested
    except ValueError:
        logger.exception("it failed")
    (line,) = lines()
    assert line["msg"] == "it failed"
    assert line["level"] == 3
    assert line["full_msg"] == "true"
    assert line["full_message"].startswith("it failed\nTraceback (most recent call last):")
    assert "ValueError: boom" in line["full_message"]


def test_stack_info_gives_full_message(json_log):
    """``stack_info=True`` also adds the stack to ``full_message``."""
    logger, lines, _ = json_log
    logger.warning("where am I", stack_info=True)
    (line,) = lines()
    assert line["level"] == 4
    assert "Stack (most recent call last)" in line["full_message"]


@pytest.mark.parametrize(
    ("level", "severity"),
    [(logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6), (logging.DEBUG, 7),
     (25, 6), (45, 3), (60, 2), (5, 7)],
)  # fmt: skip
def test_syslog_severity(json_log, level, severity):
    """Levels map to syslog severities; custom levels take the severity of the level below."""
    logger, lines, _ = json_log
    logger.setLevel(1)
    logger.log(level, "x")
    assert lines()[0]["level"] == severity


def test_non_ascii_is_kept(json_log):
    """Non-ASCII text is written as UTF-8, not escaped."""
    logger, _, stream = json_log
    logger.info("café ☕", extra={"city": "Zürich"})
    assert "café ☕" in stream.getvalue()
    assert "Zürich" in stream.getvalue()


class _Unprintable:
    def __str__(self):
        raise RuntimeError("no str")

    def __repr__(self):
        raise RuntimeError("no repr")


def test_odd_values_are_stringified(json_log):
    """Values JSON cannot represent are written as text, the line stays valid JSON."""
    logger, lines, _ = json_log
    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    logger.info(
        "odd",
        extra={
            "a_set": {1},
            "huge": 2**100,
            "nan": math.nan,
            "obj": _Unprintable(),
            "cycle": cycle,
            "surrogate": "x\ud800y",
            "none": None,
            "flag": True,
            "nested": {"k": [1, "two", None], 3: "int key"},
        },
    )
    (line,) = lines()
    assert line["msg"] == "odd"
    assert line["a_set"] == "{1}"
    assert line["huge"] == str(2**100)
    assert line["nan"] is None
    assert line["obj"] == "<unprintable _Unprintable>"
    assert isinstance(line["cycle"], str)
    assert line["surrogate"] == "x\\ud800y"
    assert line["none"] is None
    assert line["flag"] is True
    assert line["nested"] == {"k": [1, "two", None], "3": "int key"}


def test_message_that_cannot_be_formatted_still_logged(capsys):
    """A format string that does not fit its arguments still gives a line with the message."""
    stream = io.StringIO()
    JsonLogHandler(stream).emit(logging.makeLogRecord({"msg": "value: %d", "args": ("not a number",)}))
    line = json.loads(stream.getvalue())
    assert line["msg"] == "value: %d (cannot be formatted with ('not a number',))"
    assert "--- Logging error ---" not in capsys.readouterr().err


def test_extra_cannot_replace_fixed_fields(json_log):
    """An ``extra`` named like a fixed field is written as ``extra_<name>``."""
    logger, lines, _ = json_log
    logger.info("x", extra={"host": "spoofed", "level": "custom"})
    (line,) = lines()
    assert line["host"] == socket.getfqdn()
    assert line["extra_host"] == "spoofed"
    assert line["level"] == 6
    assert line["extra_level"] == "custom"


def test_secrets_are_redacted_everywhere(json_log):
    """``secret=`` values and API keys never reach the output: message, traceback and extras."""
    logger, lines, stream = json_log
    logger.info(
        "GET /c2c?secret=s3cret&x=1", extra={"url": "http://h/?secret=s3cret", "hdr": "X-API-Key: k3y"}
    )
    try:
        raise RuntimeError("failed with secret=s3cret")  # noqa: TRY301  # the traceback is what is tested
    except RuntimeError:
        logger.exception("headers %s", {"X-API-Key": "k3y"})
    output = stream.getvalue()
    assert "s3cret" not in output
    assert "k3y" not in output
    first, second = lines()
    assert first["msg"] == "GET /c2c?secret=***&x=1"
    assert first["url"] == "http://h/?secret=***"
    assert "secret=***" in second["full_message"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /c2c?secret=s3cret&x=1", "GET /c2c?secret=***&x=1"),
        ("Cookie: C2C_SECRET=abc; other=1", "Cookie: C2C_SECRET=***; other=1"),
        ("client_secret=abc&code=1", "client_secret=***&code=1"),
        ("came_from=%2F%3Fsecret%3Dabc", "came_from=%2F%3Fsecret%3D***"),
        ("X-API-Key: abc", "X-API-Key: ***"),
        ("{'HTTP_X_API_KEY': 'abc'}", "{'HTTP_X_API_KEY': '***'}"),
        ('{"secret": "abc"}', '{"secret": "***"}'),
        ("?secret=&x=1", "?secret=&x=1"),
        ("Missing or invalid secret (parameter, X-API-Key header or cookie)",
         "Missing or invalid secret (parameter, X-API-Key header or cookie)"),
    ],
)  # fmt: skip
def test_redact(text, expected):
    """Secrets are masked in every common spelling, other text is kept."""
    assert redact(text) == expected


def test_redact_returns_plain_text_unchanged():
    """Text without a secret is returned as the same object (no copy on the hot path)."""
    text = "GET /api/hello returned 200"
    assert redact(text) is text


def test_request_fields_inside_a_request(app_factory, json_log):
    """Inside a request, lines carry the request id, method, path, client address and route."""
    logger, lines, _ = json_log

    def view(request):
        logger.info("in the view")
        return {"ok": True}

    def configure(config):
        config.add_route("hello", "/hello")
        config.add_view(view, route_name="hello", renderer="json")

    app = app_factory({}, includes=("c2cwsgiutils.request_tracking",), configure=configure)
    response = app.get(
        "/hello?secret=s3cret", headers={"X-Request-ID": "req-42"}, extra_environ={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert response.headers["X-Request-ID"] == "req-42"
    logger.info("after the request")
    inside, after = lines()
    assert inside["request_id"] == "req-42"
    assert inside["method"] == "GET"
    assert inside["path"] == "/hello"
    assert inside["client_addr"] == "10.1.2.3"
    assert inside["matched_route"] == "hello"
    for field in ("request_id", "method", "path", "matched_route", "trace_id"):
        assert field not in after


def test_trace_id_when_known(json_log):
    """The W3C trace id of the current context is added as ``trace_id``."""
    logger, lines, _ = json_log
    token = _context.current_trace.set(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01"))
    try:
        logger.info("traced")
    finally:
        _context.current_trace.reset(token)
    logger.info("not traced")
    traced, untraced = lines()
    assert traced["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "trace_id" not in untraced


def test_broken_stream_does_not_raise(capsys):
    """A stream that fails to write is reported by logging, never raised to the caller."""

    class Broken(io.StringIO):
        def write(self, _text):
            raise OSError("disk full")

    handler = JsonLogHandler(Broken())
    record = logging.makeLogRecord({"msg": "x"})
    handler.emit(record)
    assert "disk full" in capsys.readouterr().err


def test_ascii_only_stream_gets_escaped_json():
    """A stream that cannot encode UTF-8 gets a valid ASCII-escaped line instead."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    handler = JsonLogHandler(stream)
    handler.emit(logging.makeLogRecord({"msg": "café"}))
    stream.flush()
    line = raw.getvalue().decode("ascii")
    assert line.count("\n") == 1
    assert json.loads(line)["msg"] == "café"


def test_format_returns_the_json_object():
    """``format`` gives the same JSON object as the line, without newline."""
    handler = JsonLogHandler(io.StringIO())
    text = handler.format(logging.makeLogRecord({"msg": "formatted"}))
    assert "\n" not in text
    assert json.loads(text)["msg"] == "formatted"


def test_cee_syslog_handler_sends_cee_json_over_udp():
    """The syslog handler sends ``<prio>: @cee: <JSON>`` datagrams."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    handler = PyramidCeeSysLogHandler(address=receiver.getsockname())
    try:
        logger = logging.getLogger("c2c_test_cee")
        logger.addHandler(handler)
        logger.propagate = False
        logger.warning("to syslog with secret=s3cret", extra={"referrer": "r"})
        datagram = receiver.recv(65536).decode("utf-8")
    finally:
        logger.removeHandler(handler)
        handler.close()
        receiver.close()
    prefix = f"<{8 * 1 + 4}>: @cee: "  # facility user (1), severity warning (4)
    assert datagram.startswith(prefix)
    payload = json.loads(datagram[len(prefix) :].rstrip("\x00"))
    assert payload["msg"] == "to syslog with secret=***"
    assert payload["referrer"] == "r"
    assert payload["level"] == 4


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary(max_size=20)
    | st.datetimes(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
_extra_names = st.text(min_size=1, max_size=12).filter(lambda name: name not in _STANDARD)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.text(), extras=st.dictionaries(_extra_names, _json_values, max_size=6))
def test_any_record_gives_one_valid_json_line(message, extras):
    """Any message and extra values give exactly one line of valid JSON with the message intact."""
    stream = io.StringIO()
    handler = JsonLogHandler(stream)
    record = logging.makeLogRecord(
        {"name": "prop", "msg": message, "levelno": 20, "levelname": "INFO", **extras}
    )
    handler.emit(record)
    output = stream.getvalue()
    assert output.endswith("\n")
    assert output.count("\n") == 1
    line = json.loads(output)
    assert line["msg"] == redact(message)
    if "secret" not in message.lower() and "key" not in message.lower():
        assert line["msg"] == message
    assert line["logger_name"] == "prop"
    for name in extras:
        assert (f"extra_{name}" if name in PROTECTED_FIELDS else name) in line


@given(message=st.text(alphabet=st.characters(codec="utf-8", categories=["Cs", "Lu", "Ll", "Zs"])))
def test_serialize_is_valid_utf8_json_even_with_surrogates(message):
    """The serializer never raises and always returns valid UTF-8 JSON, lone surrogates included."""
    data = serialize(logging.makeLogRecord({"msg": message}))
    assert isinstance(json.loads(data.decode("utf-8"))["msg"], str)


def test_record_without_level_is_info():
    """A hand-made record without level (``logging.makeLogRecord``) is written with the info severity."""
    assert json.loads(serialize(logging.makeLogRecord({"msg": "no level"})))["level"] == 6


def test_unformattable_traceback_still_logged():
    """A traceback that cannot be formatted is replaced by a note, the line is still written."""
    record = logging.makeLogRecord({"msg": "bad exc_info", "exc_info": ("not", "an", "exception")})
    line = json.loads(serialize(record))
    assert line["full_message"] == "bad exc_info\n<the traceback cannot be formatted>"


class _BrokenRequest:
    """A request whose attributes fail, to show that logging survives it."""

    def __init__(self):
        self.environ = {}

    @property
    def client_addr(self):
        raise RuntimeError("broken")

    method = "POST"
    path = "/broken"
    c2c_request_id = "rid"
    matched_route = None


def test_broken_request_attributes_are_skipped():
    """A request attribute that raises is left out; the other request fields are written."""
    token = _context.current_request.set(_BrokenRequest())
    try:
        line = json.loads(serialize(logging.makeLogRecord({"msg": "x"})))
    finally:
        _context.current_request.reset(token)
    assert "client_addr" not in line
    assert (line["method"], line["path"], line["request_id"]) == ("POST", "/broken", "rid")
    assert "matched_route" not in line


def test_unreadable_record_gives_a_minimal_line():
    """A record missing standard attributes still gives a line with its message."""
    record = logging.makeLogRecord({"msg": "damaged"})
    del record.created
    line = json.loads(serialize(record))
    assert line["msg"] == "damaged"
    assert line["full_msg"] == "the log record cannot be read"


def test_extras_keep_their_order_and_values_per_record(json_log):
    """Records of the same shape give each its own values, the extras in the order given."""
    logger, lines, stream = json_log
    for index in range(3):
        logger.info("n %d", index, extra={"zeta": index, "alpha": f"a{index}", "url": f"/?secret=s{index}"})
    for index, line in enumerate(lines()):
        assert (line["zeta"], line["alpha"], line["url"]) == (index, f"a{index}", "/?secret=***")
    keys = list(json.loads(stream.getvalue().splitlines()[0]))
    assert keys[-3:] == ["zeta", "alpha", "url"]
    assert keys[:13] == [
        "host", "msg", "timestamp", "level", "logger_name", "source_facility", "file", "line",
        "function", "pid", "thread_name", "process_name", "level_name",
    ]  # fmt: skip


def test_extra_in_place_of_a_removed_standard_attribute():
    """A record with as many attributes as a new one, one of them an extra, still writes the extra."""
    record = logging.makeLogRecord({"msg": "x"})
    del record.msecs
    record.replacement = "kept"
    assert len(vars(record)) == len(vars(logging.makeLogRecord({})))
    line = json.loads(serialize(record))
    assert line["replacement"] == "kept"
    assert "msecs" not in line


def test_formatted_record_has_no_extras():
    """``message`` and ``asctime`` set by another handler's formatter are not extras."""
    record = logging.makeLogRecord({"msg": "formatted %s", "args": ("once",)})
    logging.Formatter("%(asctime)s %(message)s").format(record)
    line = json.loads(serialize(record))
    assert line["msg"] == "formatted once"
    assert "message" not in line
    assert "asctime" not in line


def test_extra_with_non_text_keys_and_unserialisable_values():
    """A nested dictionary with non-text keys is written with text keys, other odd values as text."""
    record = logging.makeLogRecord(
        {"msg": "x", "nested": {1: "one", None: "none"}, "pair": {(2, 3): "pair"}, "items": {4}}
    )
    output = serialize(record, newline=True)
    assert output.endswith(b"}\n")
    line = json.loads(output)
    assert line["nested"] == {"1": "one", "null": "none"}
    assert line["pair"] == "{(2, 3): 'pair'}"
    assert line["items"] == "{4}"


@pytest.mark.parametrize(
    ("message", "extras", "expected"),
    [
        ("plain", {"a": "x", "b": 2}, {"msg": "plain", "a": "x", "b": 2}),
        ("in ?secret=1", {"a": "x", "b": 2}, {"msg": "in ?secret=***", "a": "x", "b": 2}),
        ("plain", {"a": "x-api-key: k", "b": "y"}, {"msg": "plain", "a": "x-api-key: ***", "b": "y"}),
        ("KeyError: 'a'", {"a": "a key", "b": 3}, {"msg": "KeyError: 'a'", "a": "a key", "b": 3}),
        ("x", {"a": "sec", "b": "ret=1"}, {"msg": "x", "a": "sec", "b": "ret=1"}),
        ("x", {"host": "secret=1", "extra_host": "y"}, {"msg": "x", "extra_host": "y"}),
        ("x", {"extra_host": "y", "host": "secret=1"}, {"msg": "x", "extra_host": "secret=***"}),
    ],
)
def test_message_and_text_extras_are_redacted_together(message, extras, expected):
    """The message and the text extras are redacted each on its own, whichever of them holds a secret."""
    record = logging.makeLogRecord({"name": "r", "msg": message, **extras})
    line = json.loads(serialize(record))
    assert {key: line[key] for key in expected} == expected


def test_redacted_message_with_extras_and_traceback():
    """With extras, the message is redacted in ``msg`` and in ``full_message``."""
    record = logging.makeLogRecord({"msg": "secret=1", "exc_text": "Traceback", "extra": "x"})
    line = json.loads(serialize(record))
    assert line["msg"] == "secret=***"
    assert line["full_message"] == "secret=***\nTraceback"
    assert line["extra"] == "x"


def test_handler_without_filters_emits_under_its_lock():
    """``handle`` emits with the handler's lock held and returns what ``Handler.handle`` returns."""
    held = []

    class _Stream(io.StringIO):
        def write(self, text):
            held.append(handler.lock._is_owned())
            return super().write(text)

    handler = JsonLogHandler(_Stream())
    record = logging.makeLogRecord({"msg": "x"})
    result = handler.handle(record)
    assert held == [True]
    assert not handler.lock._is_owned()
    assert result == logging.Handler.handle(JsonLogHandler(io.StringIO()), record)


def test_handler_filters_still_apply():
    """A filter of the handler drops records as with ``Handler.handle``."""
    stream = io.StringIO()
    handler = JsonLogHandler(stream)
    handler.addFilter(lambda record: record.msg != "drop")
    assert not handler.handle(logging.makeLogRecord({"msg": "drop"}))
    assert handler.handle(logging.makeLogRecord({"msg": "keep"}))
    assert [json.loads(line)["msg"] for line in stream.getvalue().splitlines()] == ["keep"]


def test_extra_named_level_name_keeps_the_level_name(json_log):
    """``level_name`` is a fixed field too: an extra of that name is written as ``extra_level_name``."""
    logger, lines, _ = json_log
    logger.warning("x", extra={"level_name": "custom"})
    (line,) = lines()
    assert line["level_name"] == "WARNING"
    assert line["extra_level_name"] == "custom"


def test_each_thread_writes_its_own_name(json_log):
    """The same logging call from threads of different names, or from a renamed thread, gives each name."""
    logger, lines, _ = json_log

    def log() -> None:
        logger.info("from a thread")

    for name in ("worker-1", "worker-2"):
        thread = threading.Thread(target=log, name=name)
        thread.start()
        thread.join()
    current = threading.current_thread()
    original = current.name
    try:
        log()
        current.name = "renamed"
        log()
    finally:
        current.name = original
    assert [line["thread_name"] for line in lines()] == ["worker-1", "worker-2", original, "renamed"]


def test_records_of_two_shapes_in_turn_keep_their_own_extras(json_log):
    """Records with different extras, logged in turn, each give their own extras and no other."""
    logger, lines, _ = json_log
    for index in range(3):
        logger.info("a", extra={"first": index})
        logger.info("b", extra={"second": index, "third": "t"})
        logger.info("c")
    extras = [{key: value for key, value in line.items() if key not in _FIXED} for line in lines()]
    assert extras == [
        shape for index in range(3) for shape in ({"first": index}, {"second": index, "third": "t"}, {})
    ]


_FIXED = set(PROTECTED_FIELDS) | {"level_name"}
_site_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@given(
    name=_site_texts,
    pathname=_site_texts,
    function=_site_texts | st.none(),
    lineno=st.integers(min_value=0, max_value=2**31),
    level=st.sampled_from([logging.DEBUG, logging.INFO, 25, logging.ERROR]),
    level_name=_site_texts,
    thread_name=_site_texts,
)
def test_fields_of_the_call_site_are_the_record_s(
    name, pathname, function, lineno, level, level_name, thread_name
):
    """Logger, file, line, function, level and thread are those of each record, cached or not."""
    record = logging.makeLogRecord(
        {
            "name": name,
            "pathname": pathname,
            "funcName": function,
            "lineno": lineno,
            "levelno": level,
            "levelname": level_name,
            "threadName": thread_name,
        }
    )
    first, second = json.loads(serialize(record)), json.loads(serialize(record))
    assert first["timestamp"] == second["timestamp"]
    assert first == second
    assert (first["logger_name"], first["source_facility"], first["file"]) == (name, name, pathname)
    assert (first["function"], first["line"], first["level_name"]) == (function, lineno, level_name)
    assert first["thread_name"] == thread_name
    assert first["level"] == {logging.DEBUG: 7, logging.INFO: 6, 25: 6, logging.ERROR: 3}[level]


def test_call_site_fields_with_lone_surrogates_or_unhashable_values():
    """A file name with a lone surrogate is written escaped; a list as function is written as a list."""
    record = logging.makeLogRecord({"msg": "x", "pathname": "/app/\udcff.py", "funcName": ["a", "b"]})
    line = json.loads(serialize(record))
    assert line["file"] == "/app/\\udcff.py"
    assert line["function"] == ["a", "b"]
    assert line["msg"] == "x"


def test_records_of_many_call_sites_each_give_their_own_line():
    """Records from many call sites, in turn, each give their own line number."""
    lines = [
        json.loads(serialize(logging.makeLogRecord({"msg": "x", "lineno": n})))["line"] for n in range(50)
    ]
    assert lines == list(range(50))


def test_record_class_with_its_own_message_formatting():
    """A LogRecord subclass (a record factory for ``str.format`` messages) formats its own message."""

    class BraceRecord(logging.LogRecord):
        def getMessage(self) -> str:  # noqa: N802  # logging's name
            return str(self.msg).format(*self.args)

    record = BraceRecord("braces", logging.INFO, __file__, 1, "hello {}", ("world",), None)
    assert json.loads(serialize(record))["msg"] == "hello world"
    plain = logging.LogRecord("plain", logging.INFO, __file__, 1, "%s and %d", ("one", 2), None)
    assert json.loads(serialize(plain))["msg"] == "one and 2"
    not_text = logging.LogRecord("plain", logging.INFO, __file__, 1, ValueError("boom"), (), None)
    assert json.loads(serialize(not_text))["msg"] == "boom"


def test_handler_follows_the_logging_flow():
    """Filters of the handler drop records as ``Handler.handle`` does; ``emit`` writes ``format``'s text."""

    class Tagged(JsonLogHandler):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps({"tagged": json.loads(super().format(record))["msg"]})

    stream = io.StringIO()
    handler = Tagged(stream)
    handler.addFilter(lambda record: record.getMessage() != "dropped")
    for message in ("kept", "dropped"):
        handler.handle(logging.LogRecord("t", logging.INFO, __file__, 1, message, (), None))
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [{"tagged": "kept"}]
