"""One boolean vocabulary, and every setting read through the settings module (ini keys included)."""

from __future__ import annotations

import logging
import pathlib
import textwrap

import pytest
from pyramid.exceptions import ConfigurationError

from c2cwsgiutils import _settings, config_utils, get_logconfig_dict, gunicorn_config, testing
from c2cwsgiutils._gunicorn_access import AccessLogFilter

_INI = """
[app:app]
use = egg:whatever
c2c.request_id_header = {header}
sqlalchemy.url = %(SQLALCHEMY_URL_NOT_SET)s

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console
{propagate}

[handler_console]
class = StreamHandler
args = (sys.stdout,)
formatter = generic

[formatter_generic]
format = %(message)s
"""


def _ini(tmp_path, header="X-Ini-Id", propagate=""):
    path = tmp_path / "production.ini"
    path.write_text(textwrap.dedent(_INI.format(header=header, propagate=propagate)), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("word", ["true", "T", "yes", "Y", "on", "1", " True "])
def test_true_words(word):
    assert _settings.as_bool(word) is True
    assert config_utils.config_bool(word) is True


@pytest.mark.parametrize("word", ["false", "F", "no", "n", "off", "0", ""])
def test_false_words(word):
    assert _settings.as_bool(word) is False
    assert config_utils.config_bool(word) is False


def test_a_mistyped_boolean_setting_stops_the_start_with_its_name(monkeypatch):
    """``C2C_SQL_REQUEST_ID=ture`` used to mean false without a word; now the start-up says why."""
    monkeypatch.setenv("C2C_ENABLE_EXCEPTION_HANDLING", "ture")
    with pytest.raises(
        ConfigurationError,
        match=r"C2C_ENABLE_EXCEPTION_HANDLING / c2c.enable_exception_handling: 'ture' is not a boolean",
    ):
        testing.make_app({}, includes=("c2cwsgiutils.errors",))


def test_config_bool_keeps_the_reference_leniency():
    """The public ``config_bool`` of c2cwsgiutils 6 still answers False for any other word."""
    assert config_utils.config_bool("enabled") is False
    assert config_utils.config_bool(None) is False


def test_the_access_log_filter_reads_the_ini_request_id_header(tmp_path):
    """An ini-only ``c2c.request_id_header`` reaches gunicorn's access log filter, as the app reads it."""
    config = get_logconfig_dict(_ini(tmp_path), {})
    assert config["filters"]["c2c_gunicorn_access"]["request_id_header"] == "X-Ini-Id"
    # The environment wins over the ini, as everywhere.
    config = get_logconfig_dict(_ini(tmp_path), {"C2C_REQUEST_ID_HEADER": "X-Env-Id"})
    assert config["filters"]["c2c_gunicorn_access"]["request_id_header"] == "X-Env-Id"


def test_gunicorns_own_logger_reads_the_ini_request_id_header(tmp_path):
    """Gunicorn's Logger, without the library's logconfig_dict, also takes the ini's header."""
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("paste", _ini(tmp_path, header="X-Mine"))
    access_log = logging.getLogger("gunicorn.access")
    before = list(access_log.filters)
    access_log.filters[:] = []  # an earlier test's filter would make the Logger keep it
    try:
        gunicorn_config.Logger(cfg)
        (access_filter,) = [f for f in access_log.filters if isinstance(f, AccessLogFilter)]
    finally:
        access_log.filters[:] = before
    atoms = {
        "s": "200",
        "m": "GET",
        "U": "/",
        "h": "127.0.0.1",
        "{x-mine}i": "from-mine",
        "{x-request-id}i": "other",
    }
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "line", (), None)
    record.args = atoms
    access_filter.filter(record)
    assert record.request_id == "from-mine"


def test_a_bad_propagate_word_is_named(tmp_path):
    path = pathlib.Path(_ini(tmp_path))
    text = path.read_text(encoding="utf-8").replace("keys = root", "keys = root, app")
    text += "\n[logger_app]\nqualname = app\nhandlers =\npropagate = maybe\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"logger_app: propagate = 'maybe' is not a boolean"):
        get_logconfig_dict(str(path), {})


def test_debug_logconfig_and_gunicorn_numbers_go_through_the_settings(tmp_path):
    with pytest.raises(ConfigurationError, match="DEBUG_LOGCONFIG: 'sure' is not a boolean"):
        _settings.resolve_one(
            gunicorn_config.GunicornSettings, "debug_logconfig", None, {"DEBUG_LOGCONFIG": "sure"}
        )
    settings = gunicorn_config.gunicorn_settings(
        {"GUNICORN_THREADS": "3"}, ["gunicorn", "--paste", _ini(tmp_path)]
    )
    assert settings["threads"] == 3


_KEY = {"X-API-Key": "a-vocabulary-secret"}


@pytest.fixture
def admin_app(app_factory):
    return app_factory(
        {
            "c2c.secret": "a-vocabulary-secret",
            "c2c.sql_profiler_enabled": "1",
            "c2c.db_maintenance_view_enabled": "1",
            "c2c.debug_view_enabled": "1",
        },
        includes=("c2cwsgiutils.pyramid",),
    )


def test_query_parameters_take_the_same_words(admin_app):
    """``readonly=yes``/``off`` and ``enable=on``/``n`` work; the debug flags too (``?backrefs``)."""
    from c2cwsgiutils import db, sql_profiler

    try:
        assert admin_app.get("/c2c/db/maintenance", params={"readonly": "yes"}, headers=_KEY).json["readonly"]
        assert db.force_readonly is True
        assert not admin_app.get("/c2c/db/maintenance", params={"readonly": "off"}, headers=_KEY).json[
            "readonly"
        ]
        assert admin_app.get("/c2c/sql_profiler", params={"enable": "on"}, headers=_KEY).json["enabled"]
        assert sql_profiler.is_enabled()
        assert not admin_app.get("/c2c/sql_profiler", params={"enable": "n"}, headers=_KEY).json["enabled"]
    finally:
        db.set_force_readonly(False)
        sql_profiler.disable()


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/c2c/sql_profiler", "enable"),
        ("/c2c/db/maintenance", "readonly"),
        ("/c2c/debug/memory", "python_internals_map"),
    ],
)
def test_a_query_parameter_that_is_no_boolean_is_a_json_400(admin_app, path, name):
    """``enable=maybe`` used to mean false (or 500 after the settings became strict): now a clear 400."""
    from c2cwsgiutils import sql_profiler

    response = admin_app.get(path, params={name: "maybe"}, headers=_KEY, status=400)
    assert response.content_type == "application/json"
    assert response.json["message"] == f"Invalid {name} value: 'maybe' (true or false expected)"
    assert not sql_profiler.is_enabled()
