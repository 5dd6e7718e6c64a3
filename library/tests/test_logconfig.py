from __future__ import annotations

import configparser
import json
import logging
import logging.config
import logging.handlers
import textwrap

import pytest

from c2cwsgiutils import get_logconfig_dict
from c2cwsgiutils.pyramid_logging import JsonLogHandler


class StarArgsHandler(logging.Handler):
    """A handler whose parameters have no names (like the reference's CEE syslog handler)."""

    def __init__(self, *args):
        """Keep the arguments."""
        super().__init__()
        self.args = args


def _ini(tmp_path, body, name="logging.ini"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return str(path)


_BASE = """
[loggers]
keys = root, app

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_app]
level = DEBUG
handlers =
qualname = my.app

[handler_console]
class = StreamHandler
{handler}
formatter = generic

[formatter_generic]
format = %(levelname)s %(name)s %(message)s
"""


def test_args_stream_becomes_an_ext_reference(tmp_path):
    """``args = (sys.stdout,)`` gives ``stream: ext://sys.stdout`` and a handler class in ``logging``."""
    config = get_logconfig_dict(_ini(tmp_path, _BASE.format(handler="args = (sys.stdout,)")), {})
    assert config["handlers"]["console"] == {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
        "formatter": "generic",
    }
    assert config["version"] == 1
    assert config["disable_existing_loggers"] is False
    assert config["root"] == {"level": "WARNING", "handlers": ["console"]}
    assert config["loggers"]["my.app"] == {"level": "DEBUG", "handlers": [], "propagate": True}
    assert config["formatters"]["generic"] == {
        "format": "%(levelname)s %(name)s %(message)s",
        "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
        "class": "logging.Formatter",
    }


def test_kwargs_handler_configures_logging(tmp_path, capsys):
    """``kwargs = {...}`` handlers work with dictConfig: a record of a child logger reaches stdout."""
    ini = _ini(tmp_path, _BASE.format(handler='kwargs = {"stream": "ext://sys.stdout"}'))
    logging.config.dictConfig(get_logconfig_dict(ini, {}))
    logging.getLogger("my.app.sub").debug("hello %s", "there")
    assert capsys.readouterr().out == "DEBUG my.app.sub hello there\n"


def test_kwargs_may_name_objects(tmp_path):
    """Names such as ``sys.stderr`` or ``handlers.SysLogHandler.LOG_LOCAL0`` become ext references."""
    ini = _ini(
        tmp_path,
        _BASE.format(handler="kwargs = {'stream': sys.stderr, 'other': [handlers.SysLogHandler.LOG_LOCAL0]}"),
    )
    handler = get_logconfig_dict(ini, {})["handlers"]["console"]
    assert handler["stream"] == "ext://sys.stderr"
    assert handler["other"] == ["ext://logging.handlers.SysLogHandler.LOG_LOCAL0"]


def test_several_positional_args_get_their_names(tmp_path):
    """Positional args are bound to the class's parameter names, as fileConfig accepts them."""
    body = _BASE.replace("class = StreamHandler", "class = handlers.RotatingFileHandler").format(
        handler="args = ('%(here)s/app.log', 'a', 1000, 3)"
    )
    config = get_logconfig_dict(_ini(tmp_path, body), {})
    handler = config["handlers"]["console"]
    assert handler["class"] == "logging.handlers.RotatingFileHandler"
    assert handler["filename"] == f"{tmp_path}/app.log"
    assert (handler["mode"], handler["maxBytes"], handler["backupCount"]) == ("a", 1000, 3)
    logging.config.dictConfig(config)
    logging.getLogger("my.app").warning("to the file")
    for root_handler in logging.getLogger().handlers:
        root_handler.flush()
    assert (tmp_path / "app.log").read_text(encoding="utf-8") == "WARNING my.app to the file\n"
    for root_handler in logging.getLogger().handlers:
        root_handler.close()


def test_handler_level_is_kept(tmp_path, capsys):
    """A handler's ``level`` filters what it writes."""
    ini = _ini(tmp_path, _BASE.format(handler="args = (sys.stdout,)\nlevel = error"))
    config = get_logconfig_dict(ini, {})
    assert config["handlers"]["console"]["level"] == "ERROR"
    logging.config.dictConfig(config)
    logging.getLogger("my.app").warning("dropped by the handler")
    logging.getLogger("my.app").error("kept")
    assert capsys.readouterr().out == "ERROR my.app kept\n"


def test_several_handlers_per_logger(tmp_path, capsys):
    """``handlers = console, json`` attaches both handlers, each with its own format."""
    body = _BASE.replace("keys = console", "keys = console, json").replace(
        "handlers = console", "handlers = console, json"
    ) + textwrap.dedent(
        """
        [handler_json]
        class = c2cwsgiutils.pyramid_logging.JsonLogHandler
        args = (sys.stdout,)
        """
    )
    config = get_logconfig_dict(_ini(tmp_path, body.format(handler="args = (sys.stdout,)")), {})
    assert config["root"]["handlers"] == ["console", "json"]
    assert config["handlers"]["json"] == {
        "class": "c2cwsgiutils.pyramid_logging.JsonLogHandler",
        "stream": "ext://sys.stdout",
    }
    logging.config.dictConfig(config)
    assert [type(h) for h in logging.getLogger().handlers] == [logging.StreamHandler, JsonLogHandler]
    logging.getLogger("my.app").warning("twice")
    plain, as_json = capsys.readouterr().out.splitlines()
    assert plain == "WARNING my.app twice"
    assert json.loads(as_json)["msg"] == "twice"


def test_environment_interpolation(tmp_path):
    """``%(NAME)s`` takes environment values; ``%`` in a value survives; formats are read raw."""
    body = _BASE.replace("level = DEBUG", "level = %(APP_LEVEL)s").replace(
        "format = %(levelname)s", "format = %(PREFIX)s %(levelname)s"
    )
    config = get_logconfig_dict(
        _ini(tmp_path, body.format(handler="args = (sys.stdout,)")), {"APP_LEVEL": "info", "PREFIX": "50%"}
    )
    assert config["loggers"]["my.app"]["level"] == "INFO"
    # Formats are raw: %(PREFIX)s is a LogRecord attribute reference, not an ini interpolation.
    assert config["formatters"]["generic"]["format"].startswith("%(PREFIX)s ")


def test_missing_environment_variable_is_an_error(tmp_path):
    """A ``%(NAME)s`` without value names the variable."""
    body = _BASE.replace("level = DEBUG", "level = %(NOT_SET_ANYWHERE)s")
    with pytest.raises(configparser.InterpolationMissingOptionError, match=r"NOT_SET_ANYWHERE"):
        get_logconfig_dict(_ini(tmp_path, body.format(handler="args = (sys.stdout,)")), {})


def test_propagate(tmp_path):
    """Loggers propagate unless ``propagate = 0``, even if something turned propagation off before."""
    body = _BASE.replace("qualname = my.app", "qualname = my.app\npropagate = 0")
    body = body.replace("keys = root, app", "keys = root, app, other") + textwrap.dedent(
        """
        [logger_other]
        handlers =
        qualname = gunicorn.error
        """
    )
    config = get_logconfig_dict(_ini(tmp_path, body.format(handler="args = (sys.stdout,)")), {})
    assert config["loggers"]["my.app"]["propagate"] is False
    assert config["loggers"]["gunicorn.error"] == {"handlers": [], "propagate": True}
    logging.getLogger("gunicorn.error").propagate = False  # what gunicorn does
    logging.config.dictConfig(config)
    assert logging.getLogger("gunicorn.error").propagate is True


def test_config_uri_is_accepted(tmp_path):
    """A ``c2c://`` URI (absolute or with a section) is read as its file."""
    ini = _ini(tmp_path, _BASE.format(handler="args = (sys.stdout,)"))
    assert get_logconfig_dict(f"c2c://{ini}#main", {}) == get_logconfig_dict(ini, {})
    assert get_logconfig_dict(f"config:{ini}", {}) == get_logconfig_dict(ini, {})


def test_formatter_style(tmp_path):
    """A formatter's ``style`` is kept."""
    body = _BASE.format(handler="args = (sys.stdout,)").replace(
        "format = %(levelname)s %(name)s %(message)s", "format = {levelname} {message}\nstyle = {"
    )
    config = get_logconfig_dict(_ini(tmp_path, body), {})
    assert config["formatters"]["generic"]["style"] == "{"
    assert config["formatters"]["generic"]["format"] == "{levelname} {message}"


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("args = (sys.stdout, 'w', 'x', 'y')", r"handler_console: args = .* do not fit StreamHandler"),
        ("args = (open('x'),)", r"handler_console: cannot parse args = \(open\('x'\),\)"),
        ("args = (sys.stdout,", r"handler_console: cannot parse args"),
        ("kwargs = [1, 2]", r"handler_console: kwargs must be a dict"),
        ("kwargs = {'level': 'INFO'}", r"handler_console: kwargs cannot set level"),
    ],
)
def test_bad_handler_arguments_are_clear_errors(tmp_path, handler, message):
    """Arguments that cannot be used raise a ValueError naming the handler section."""
    with pytest.raises(ValueError, match=message):
        get_logconfig_dict(_ini(tmp_path, _BASE.format(handler=handler)), {})


def test_star_args_class_requires_kwargs(tmp_path):
    """A class taking ``*args`` cannot get ``args``: the error says to use ``kwargs``."""
    body = _BASE.replace("class = StreamHandler", f"class = {__name__}.StarArgsHandler")
    with pytest.raises(ValueError, match=r"takes \*args.*use 'kwargs"):
        get_logconfig_dict(_ini(tmp_path, body.format(handler="args = (1, 2)")), {})


def test_unknown_class_is_a_clear_error(tmp_path):
    """A handler class that cannot be imported is named in the error."""
    body = _BASE.replace("class = StreamHandler", "class = no_such_module.Handler")
    with pytest.raises(ValueError, match=r"handler_console: cannot import the class no_such_module.Handler"):
        get_logconfig_dict(_ini(tmp_path, body.format(handler="args = (sys.stdout,)")), {})


def test_undeclared_handler_is_a_clear_error(tmp_path):
    """A logger that uses a handler missing from ``[handlers]`` is reported by name."""
    body = _BASE.replace("handlers = console", "handlers = console, json")
    with pytest.raises(ValueError, match=r"logger 'root' uses the handler\(s\) json"):
        get_logconfig_dict(_ini(tmp_path, body.format(handler="args = (sys.stdout,)")), {})


def test_missing_sections_are_clear_errors(tmp_path):
    """A handler or logger listed without its section, or a handler without class, is reported."""
    body = _BASE.format(handler="args = (sys.stdout,)")
    with pytest.raises(ValueError, match=r"'json' is listed in \[handlers\] but has no \[handler_json\]"):
        get_logconfig_dict(_ini(tmp_path, body.replace("keys = console", "keys = console, json")), {})
    with pytest.raises(ValueError, match=r"logger 'web' is listed in \[loggers\] but has no \[logger_web\]"):
        get_logconfig_dict(_ini(tmp_path, body.replace("keys = root, app", "keys = root, app, web")), {})
    with pytest.raises(ValueError, match=r"handler_console: 'class' is missing"):
        get_logconfig_dict(_ini(tmp_path, body.replace("class = StreamHandler", "")), {})


def test_no_logging_sections(tmp_path):
    """An ini file without logging sections gives an empty configuration."""
    config = get_logconfig_dict(_ini(tmp_path, "[app:main]\nuse = egg:x\n"), {})
    assert config == {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {},
        "handlers": {},
        "formatters": {},
    }
