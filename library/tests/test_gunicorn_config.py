from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import webtest

gunicorn_config = pytest.importorskip("c2cwsgiutils.gunicorn_config")
from gunicorn import glogging, util  # noqa: E402  # gunicorn is optional: import after the skip
from gunicorn.config import Config  # noqa: E402

from c2cwsgiutils import testing  # noqa: E402
from c2cwsgiutils._gunicorn_access import AccessLogFilter  # noqa: E402
from c2cwsgiutils._redact import redact  # noqa: E402

_APP_INI = Path(__file__).resolve().parent / "server_app" / "production.ini"
_APP_ENV = {
    "LOG_TYPE": "json",
    "LOG_LEVEL": "INFO",
    "OTHER_LOG_LEVEL": "WARNING",
    "GUNICORN_LOG_LEVEL": "INFO",
    "C2CWSGIUTILS_LOG_LEVEL": "INFO",
    "SERVER_APP_GREETING": "hi",
    "SERVER_APP_PERCENT": "50%",
}


def test_defaults_of_the_reference_template(tmp_path):
    """Without environment, the settings are those of the reference gunicorn.conf.py."""
    settings = gunicorn_config.gunicorn_settings(
        {}, ["gunicorn", "--paste", str(tmp_path / "missing.ini")], cgroup_root=str(tmp_path)
    )
    assert settings["bind"] == ":8080"
    assert settings["worker_class"] == "gthread"
    assert settings["workers"] == 2
    assert settings["threads"] == 10
    assert settings["accesslog"] == "-"
    assert settings["access_log_format"] == gunicorn_config.DEFAULT_ACCESS_LOG_FORMAT
    assert settings["paste"] == settings["wsgi_app"] == str(tmp_path / "missing.ini")
    assert settings["logconfig_dict"] == {}
    assert settings["raw_paste_global_conf"] == []
    assert settings["logger_class"] is gunicorn_config.Logger


def test_environment_overrides():
    """``GUNICORN_*`` variables set workers, threads and the access log format; ``%`` is escaped."""
    settings = gunicorn_config.gunicorn_settings(
        {
            "GUNICORN_WORKERS": "4",
            "GUNICORN_THREADS": "3",
            "GUNICORN_ACCESS_LOG_FORMAT": "%(r)s",
            "C2CWSGIUTILS_CONFIG": "other.ini",
        },
        ["gunicorn"],
    )
    assert (settings["workers"], settings["threads"]) == (4, 3)
    assert settings["access_log_format"] == "%(r)s"
    assert settings["paste"] == "other.ini"
    assert "GUNICORN_ACCESS_LOG_FORMAT=%%(r)s" in settings["raw_paste_global_conf"]


def test_invalid_worker_count_is_named():
    """A worker count that is not a number is a clear error."""
    from pyramid.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="GUNICORN_WORKERS: an integer is expected, got 'many'"):
        gunicorn_config.gunicorn_settings({"GUNICORN_WORKERS": "many"}, ["gunicorn"])


def test_logconfig_from_the_paste_file():
    """The ini's logging sections become ``logconfig_dict``."""
    settings = gunicorn_config.gunicorn_settings(_APP_ENV, ["gunicorn", f"--paste={_APP_INI}"])
    config = settings["logconfig_dict"]
    assert config["root"]["handlers"] == ["json"]
    assert config["loggers"]["gunicorn.error"]["propagate"] is True
    assert config["handlers"]["json"]["class"] == "c2cwsgiutils.pyramid_logging.JsonLogHandler"


def test_c2c_uri_is_loaded_through_plaster(monkeypatch):
    """A ``c2c://`` URI becomes a ``wsgi_app`` that gunicorn imports and that builds the application."""
    for name, value in _APP_ENV.items():
        monkeypatch.setenv(name, value)
    uri = f"c2c://{_APP_INI}"
    settings = gunicorn_config.gunicorn_settings({**_APP_ENV, "C2CWSGIUTILS_CONFIG": uri}, ["gunicorn"])
    assert settings["paste"] is None
    assert settings["wsgi_app"] == f"c2cwsgiutils.gunicorn_config:load_paste_app({uri!r})"
    assert settings["logconfig_dict"]["root"]["handlers"] == ["json"]
    app = webtest.TestApp(util.import_app(settings["wsgi_app"]))
    assert app.get("/hello").json == {"hello": "hi", "percent": "50%"}


def test_debug_logconfig_prints_one_json_line(tmp_path):
    """With ``DEBUG_LOGCONFIG=1``, importing the module prints the dict config as one JSON line."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("C2C", "DEBUG_LOGCONFIG"))},
        **_APP_ENV,
        "C2CWSGIUTILS_CONFIG": str(_APP_INI),
    }
    command = [sys.executable, "-c", "import c2cwsgiutils.gunicorn_config"]
    quiet = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert quiet.stdout == ""
    loud = subprocess.run(
        command, env={**env, "DEBUG_LOGCONFIG": "1"}, capture_output=True, text=True, check=True, cwd=tmp_path
    )
    (line,) = loud.stdout.splitlines()
    assert json.loads(line)["logconfig_dict"]["root"] == {"level": "WARNING", "handlers": ["json"]}


def test_import_outside_gunicorn_does_not_crash(tmp_path):
    """Importing the module where no ini file exists works and only warns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C", "DEBUG_LOGCONFIG"))}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import c2cwsgiutils.gunicorn_config as g; print(g.workers, g.logconfig_dict)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout == "2 {}\n"
    assert "production.ini' does not exist" in result.stderr


@pytest.fixture(autouse=True)
def _no_access_filter_left():
    """The filter a test's Logger puts on ``gunicorn.access`` does not reach the next test."""
    access = logging.getLogger("gunicorn.access")
    filters = list(access.filters)
    yield
    access.filters[:] = filters


def _config(**values):
    cfg = Config()
    for name, value in values.items():
        cfg.set(name, value)
    return cfg


_LOGCONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": []},
    "loggers": {},
    "handlers": {},
    "formatters": {},
}


def _exchange(query="secret=s3cret&x=1", response_headers=None, request_headers=(), **environ):
    resp = SimpleNamespace(
        status="200 OK", headers=response_headers or [("X-Request-ID", "rid-1")], sent=15, response_length=15
    )
    req = SimpleNamespace(
        headers=[("X-API-KEY", "k3y"), ("COOKIE", "C2C_SECRET=c00kie; lang=fr"), *request_headers]
    )
    env = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/hello?{query}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/hello",
        "QUERY_STRING": query,
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_REFERER": f"http://example.com/?{query}",
        **environ,
    }
    return resp, req, env, dt.timedelta(seconds=1, microseconds=500)


def test_access_line_masks_secrets_and_carries_fields():
    """Access lines mask secrets in every atom and carry status, method, path, duration and request id."""
    logger = gunicorn_config.Logger(
        _config(
            accesslog="-",
            logconfig_dict=_LOGCONFIG,
            access_log_format='%(r)s %(q)s "%(f)s" %({x-api-key}i)s %({cookie}i)s %({query_string}e)s %(s)s',
        )
    )
    with testing.capture_logs("gunicorn.access") as records:
        logger.access(*_exchange())
    (record,) = records
    message = record.getMessage()
    assert "s3cret" not in message
    assert "k3y" not in message
    assert "c00kie" not in message
    assert message == (
        'GET /hello?secret=***&x=1 HTTP/1.1 secret=***&x=1 "http://example.com/?secret=***&x=1" '
        "*** C2C_SECRET=***; lang=fr secret=***&x=1 200"
    )
    assert record.status == 200
    assert record.method == "GET"
    assert record.path == "/hello"
    assert record.query == "secret=***&x=1"
    assert record.duration == pytest.approx(1.0005)
    assert record.client_addr == "10.0.0.1"
    assert record.request_id == "rid-1"


def test_access_line_redacts_before_escaping_quotes():
    """A secret in an atom with quotes: redacted first, then its quotes escaped (as gunicorn's atoms)."""
    logger = gunicorn_config.Logger(
        _config(accesslog="-", logconfig_dict=_LOGCONFIG, access_log_format='%(U)s "%(f)s" "%(a)s"')
    )
    referer = 'http://x/?a="b"&secret=p"w"d'
    with testing.capture_logs("gunicorn.access") as records:
        logger.access(*_exchange(query="", HTTP_REFERER=referer, HTTP_USER_AGENT='say "hi"'))
    (record,) = records
    assert 'p\\"w' not in record.getMessage()
    assert record.getMessage() == '/hello "{}" "say \\"hi\\""'.format(redact(referer).replace('"', '\\"'))


_EVERY_ATOM = (
    '%(h)s %(l)s %(u)s "%(r)s" %(s)s %(m)s %(U)s %(q)s %(H)s %(b)s %(B)s "%(f)s" "%(a)s" %(T)s %(D)s %(M)s '
    "%(L)s %(p)s %({Host}i)s %({x-missing}i)s %({content-type}o)s %({X-Request-Id}o)s %({raw_uri}e)s "
    "%({REQUEST_METHOD}e)s %({nothing}e)s %(zz)s %({bad}x)s %%(literal)s"
)


@pytest.mark.parametrize("fmt", [gunicorn_config.DEFAULT_ACCESS_LOG_FORMAT, _EVERY_ATOM, "%(r)s", "plain"])
def test_access_line_is_gunicorns_line(fmt):
    """Without secrets, an access line is exactly the line of gunicorn's own logger."""
    resp = SimpleNamespace(
        status="201 Created",
        headers=[("Content-Type", "application/json"), ("X-Request-ID", "rid-2"), ("Content-Type", "x/y")],
        sent=0,
    )
    req = SimpleNamespace(headers=[("HOST", "example.com"), ("USER-AGENT", 'say "hi"')])
    env = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/a%20b?x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/a b",
        "QUERY_STRING": "x=1",
        "REMOTE_ADDR": "10.0.0.2",
        "HTTP_USER_AGENT": 'say "hi"',
        "HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz",
    }
    duration = dt.timedelta(seconds=2, microseconds=3456)
    cfg = _config(accesslog="-", logconfig_dict=_LOGCONFIG, access_log_format=fmt)
    ours = gunicorn_config.Logger(cfg)
    gunicorns = glogging.Logger(cfg)
    expected = fmt % glogging.SafeAtoms(gunicorns.atoms(resp, req, env, duration))
    with testing.capture_logs("gunicorn.access") as records:
        ours.access(resp, req, env, duration)
    (record,) = records
    assert record.getMessage() == expected
    assert record.funcName == "access"
    assert record.status == 201


def test_access_request_id_fallbacks(monkeypatch):
    """The request id comes from the configured header, else from the request's ``X-Request-ID``."""
    monkeypatch.setenv("C2C_REQUEST_ID_HEADER", "X-Trace")
    logger = gunicorn_config.Logger(_config(accesslog="-", logconfig_dict=_LOGCONFIG))
    text = [("Content-Type", "text/plain")]
    with testing.capture_logs("gunicorn.access") as records:
        logger.access(*_exchange(query="", response_headers=[("x-trace", "custom")]))
        logger.access(*_exchange(query="", response_headers=text, request_headers=[("X-Request-ID", "in")]))
        logger.access(*_exchange(query="", response_headers=text))
    assert [getattr(r, "request_id", None) for r in records] == ["custom", "in", None]
    assert not hasattr(records[0], "query")


def test_fields_are_values_without_the_escaping_of_the_line():
    """A quote in the path or the query is escaped in the line, not in the ``path``/``query`` fields."""
    logger = gunicorn_config.Logger(
        _config(accesslog="-", logconfig_dict=_LOGCONFIG, access_log_format="%(U)s?%(q)s")
    )
    with testing.capture_logs("gunicorn.access") as records:
        logger.access(*_exchange(query='a="b"&secret=x"y', PATH_INFO='/say "hi"'))
    (record,) = records
    # The whole value of secret= is masked, up to the next & or ; (a quote does not end it).
    assert record.getMessage() == '/say \\"hi\\"?a=\\"b\\"&secret=***'
    assert record.path == '/say "hi"'
    assert record.query == 'a="b"&secret=***'


def test_gunicorn_logs_follow_the_ini_configuration():
    """Unless the ini configures them, gunicorn's loggers lose their plain handlers and propagate to root."""
    logger = gunicorn_config.Logger(_config(accesslog="-", logconfig_dict=_LOGCONFIG))
    for log in (logger.error_log, logger.access_log):
        assert log.propagate is True
        assert log.handlers == []

    own = {**_LOGCONFIG, "loggers": {"gunicorn.access": {"handlers": [], "propagate": False}}}
    logger = gunicorn_config.Logger(_config(accesslog="-", logconfig_dict=own))
    assert logger.access_log.propagate is False
    assert logger.error_log.propagate is True


def test_handlers_that_gunicorn_did_not_add_are_kept():
    """Only the handlers gunicorn's own setup added are removed, also on a reload."""
    mine = logging.NullHandler()
    logging.getLogger("gunicorn.error").addHandler(mine)
    cfg = _config(accesslog="-", logconfig_dict=_LOGCONFIG)
    logger = gunicorn_config.Logger(cfg)
    logger.setup(cfg)
    assert logger.error_log.handlers == [mine]
    assert logger.access_log.handlers == []


def test_without_logconfig_gunicorn_keeps_its_handlers():
    """Without ``logconfig_dict``, gunicorn's own handlers are kept, and its access lines are masked."""
    logger = gunicorn_config.Logger(_config(accesslog="-", access_log_format="%(r)s"))
    assert logger.access_log.handlers
    assert logger.access_log.propagate is False
    with testing.capture_logs("gunicorn.access") as records:
        logger.access(*_exchange())
    assert records[0].getMessage() == "GET /hello?secret=***&x=1 HTTP/1.1"


def test_access_filter_is_added_once():
    """The filter of the logging configuration is kept; else the Logger adds one, once per reload."""
    cfg = _config(accesslog="-", logconfig_dict=_LOGCONFIG)
    logger = gunicorn_config.Logger(cfg)
    logger.setup(cfg)
    access_filters = [f for f in logger.access_log.filters if isinstance(f, AccessLogFilter)]
    assert len(access_filters) == 1

    configured = AccessLogFilter("X-Configured")
    logger.access_log.removeFilter(access_filters[0])
    logger.access_log.addFilter(configured)
    logger.setup(cfg)
    assert [f for f in logger.access_log.filters if isinstance(f, AccessLogFilter)] == [configured]


def test_access_disabled_or_failing():
    """No access line when disabled; a line that cannot be cleaned is replaced, never written as is."""
    logger = gunicorn_config.Logger(_config(logconfig_dict={}))
    logger.setup(_config())  # no access log at all
    with testing.capture_logs("gunicorn.access") as records:
        logger.access(*_exchange())
    assert records == []

    class Unprintable:
        def __str__(self):
            raise RuntimeError

    logger = gunicorn_config.Logger(_config(accesslog="-", logconfig_dict=_LOGCONFIG))
    resp, req, env, duration = _exchange()
    resp.status = Unprintable()
    with testing.capture_logs("gunicorn.access") as records:
        logger.access(resp, req, env, duration)
    (record,) = records
    assert record.getMessage() == "<access line that could not be cleaned>"
    assert "s3cret" not in record.getMessage()


@pytest.mark.parametrize(("status", "expected"), [(204, 204), ("404 Not Found", 404), ("weird", "weird")])
def test_status_codes(status, expected):
    """Integer and text statuses both give an integer ``status``; another text is kept."""
    logger = gunicorn_config.Logger(_config(accesslog="-", logconfig_dict=_LOGCONFIG))
    resp, req, env, duration = _exchange()
    resp.status = status
    with testing.capture_logs("gunicorn.access") as records:
        logger.access(resp, req, env, duration)
    assert records[0].status == expected


def test_gunicorn_conf_py_reduces_to_one_import(tmp_path):
    """A gunicorn.conf.py that star-imports the module and overrides a value is valid for gunicorn."""
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(
        textwrap.dedent(
            """
            from c2cwsgiutils.gunicorn_config import *  # noqa: F403
            workers = 7
            """
        ),
        encoding="utf-8",
    )
    namespace: dict[str, object] = {}
    exec(compile(conf.read_text(encoding="utf-8"), str(conf), "exec"), namespace)  # what gunicorn does
    cfg = Config()
    for name, value in namespace.items():
        if name in cfg.settings:
            cfg.set(name, value)
    assert cfg.workers == 7
    assert cfg.worker_class_str == "gthread"
    assert cfg.logger_class is gunicorn_config.Logger


def test_ini_without_logging_sections_gives_no_logconfig(tmp_path):
    """An ini file without logging sections leaves gunicorn's logging defaults (empty ``logconfig_dict``)."""
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\nuse = egg:x\n", encoding="utf-8")
    assert gunicorn_config.gunicorn_settings({}, ["gunicorn", "--paste", str(ini)])["logconfig_dict"] == {}


def test_load_paste_app_honours_the_uri_fragment(monkeypatch):
    """``#app`` in the URI selects that section (here the application without the filter pipeline)."""
    for name, value in _APP_ENV.items():
        monkeypatch.setenv(name, value)
    app = gunicorn_config.load_paste_app(f"c2c://{_APP_INI}#app")
    assert type(app).__name__ == "Router"
    pipeline = gunicorn_config.load_paste_app(f"c2c://{_APP_INI}")
    assert type(pipeline).__name__ != "Router"


def _cgroup(tmp_path, files):
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content + "\n")
    return str(tmp_path)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000"}, None),
        ({"cpu.max": "150000 100000"}, 1.5),
        ({"cpu.max": "garbage"}, None),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3.0),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "50000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 0.5),
        ({}, None),
    ],
)
def test_cgroup_cpu_limit(tmp_path, files, expected):
    """The CPU quota is read from cgroup v2 ``cpu.max``, else from cgroup v1, ``None`` without one."""
    assert gunicorn_config.cgroup_cpu_limit(_cgroup(tmp_path, files)) == expected


def test_workers_follow_the_cpu_quota(tmp_path, monkeypatch):
    """Without GUNICORN_WORKERS, a 2.5-CPU quota gives 3 workers, half a CPU 1, no quota 2."""
    monkeypatch.setattr(gunicorn_config.os, "sched_getaffinity", lambda _pid: set(range(64)))
    argv = ["gunicorn", "--paste", str(tmp_path / "missing.ini")]

    def workers(cpu_max, environ=None):
        root = tmp_path / cpu_max.replace(" ", "_")
        return gunicorn_config.gunicorn_settings(
            environ or {}, argv, cgroup_root=_cgroup(root, {"cpu.max": cpu_max})
        )["workers"]

    assert workers("250000 100000") == 3
    assert workers("50000 100000") == 1
    assert workers("max 100000") == gunicorn_config.DEFAULT_WORKERS == 2
    assert workers("250000 100000", {"GUNICORN_WORKERS": "5"}) == 5


def test_workers_never_exceed_the_usable_cpus(tmp_path, monkeypatch):
    """A quota larger than the CPUs the process may run on gives one worker per usable CPU."""
    monkeypatch.setattr(gunicorn_config.os, "sched_getaffinity", lambda _pid: {0, 1})
    settings = gunicorn_config.gunicorn_settings(
        {}, ["gunicorn"], cgroup_root=_cgroup(tmp_path, {"cpu.max": "800000 100000"})
    )
    assert settings["workers"] == 2


def test_access_fields_are_never_attributes_of_a_log_record():
    """The filter adds exactly the fields, none of which is an attribute every record has."""
    logger = gunicorn_config.Logger(_config(accesslog="-", logconfig_dict=_LOGCONFIG))
    with testing.capture_logs("gunicorn.access") as records:
        logger.access(*_exchange())
    standard = set(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", (), None))) | {"message", "asctime"}
    fields = set(vars(records[0])) - standard
    assert fields == {"status", "method", "path", "query", "duration", "client_addr", "request_id"}
