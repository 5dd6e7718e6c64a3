from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest
import webtest

from c2cwsgiutils import setup_process

DATA = Path(__file__).parent / "loader_data"
APP_INI = DATA / "app.ini"


@pytest.fixture
def test_env(monkeypatch):
    """The environment variables the test ini file refers to, and the test app on the path."""
    monkeypatch.setenv("TEST_GREETING", "bonjour")
    monkeypatch.setenv("TEST_PERCENT", "1%")
    monkeypatch.setenv("TEST_LOG_LEVEL", "DEBUG")
    monkeypatch.syspath_prepend(str(DATA))


def test_fill_arguments_positional():
    """By default the configuration URI and variables are optional positional arguments."""
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser)
    args = parser.parse_args([])
    assert args.config_uri == "c2c:///app/production.ini"
    assert args.config_vars == []
    args = parser.parse_args(["c2c://my.ini", "a=1", "b=2"])
    assert args.config_uri == "c2c://my.ini"
    assert args.config_vars == ["a=1", "b=2"]


def test_fill_arguments_options():
    """With ``use_attribute`` they are the ``--config-uri`` and ``--config-vars`` options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("positional")
    setup_process.fill_arguments(parser, use_attribute=True, default_config_uri="c2c://default.ini")
    args = parser.parse_args(["x"])
    assert (args.config_uri, args.config_vars) == ("c2c://default.ini", [])
    args = parser.parse_args(["x", "--config-uri", "c2c://other.ini", "--config-vars", "a=1", "b=2"])
    assert (args.positional, args.config_uri, args.config_vars) == ("x", "c2c://other.ini", ["a=1", "b=2"])


def test_bootstrap_application(test_env):
    """The application is loaded with the environment's values, and logging is configured."""
    env = setup_process.bootstrap_application(f"c2c://{APP_INI}")
    try:
        assert set(env) >= {"app", "registry", "request", "root", "closer", "root_factory"}
        assert env["registry"].settings["greeting"] == "bonjour"
        assert env["request"].route_url("greeting") == "http://localhost/bonjour"
        assert webtest.TestApp(env["app"]).get("/bonjour").text == "bonjour"
        assert logging.getLogger("c2cwsgiutils_loader_test").level == logging.DEBUG
    finally:
        env["closer"]()


def test_bootstrap_plain_path_interpolates_environment(test_env):
    """A path without scheme is read with the ``c2c://`` loader (environment interpolation)."""
    env = setup_process.bootstrap_application(str(APP_INI), {"TEST_GREETING": "hallo"})
    try:
        assert env["registry"].settings["greeting"] == "hallo"
    finally:
        env["closer"]()


def test_bootstrap_application_from_options(test_env):
    """The command line variables win over the environment."""
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser)
    args = parser.parse_args([f"c2c://{APP_INI}", "TEST_GREETING=salut", "TEST_LOG_LEVEL=WARNING"])
    env = setup_process.bootstrap_application_from_options(args)
    try:
        assert env["registry"].settings["greeting"] == "salut"
        assert logging.getLogger("c2cwsgiutils_loader_test").level == logging.WARNING
    finally:
        env["closer"]()


def test_init(test_env):
    """``init`` configures logging and returns a configurator with the application settings."""
    config = setup_process.init(f"c2c://{APP_INI}")
    assert config.get_settings()["greeting"] == "bonjour"
    assert config.get_settings()["c2c.base_path"] == "/c2c"
    assert logging.getLogger("c2cwsgiutils_loader_test").level == logging.DEBUG


def test_init_missing_file(tmp_path):
    """A missing configuration file is an error naming the file."""
    with pytest.raises(Exception, match=r"missing\.ini"):
        setup_process.init(str(tmp_path / "missing.ini"))


def test_init_logging_is_deprecated(test_env):
    """``init_logging`` still configures logging, with a deprecation warning."""
    with pytest.warns(DeprecationWarning, match="init_logging is deprecated"):
        setup_process.init_logging(f"c2c://{APP_INI}")
    assert logging.getLogger("c2cwsgiutils_loader_test").level == logging.DEBUG


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("production.ini", "c2c://production.ini"),
        ("/app/production.ini#app", "c2c:///app/production.ini#app"),
        ("c2c:///app/production.ini", "c2c:///app/production.ini"),
        ("egg:my_app", "egg:my_app"),
        ("file+ini:///x.ini", "file+ini:///x.ini"),
    ],
)
def test_plain_paths_use_the_c2c_loader(uri, expected):
    """Only a URI without scheme is given the ``c2c://`` scheme."""
    assert setup_process._config_uri(uri) == expected


def test_init_includes_existing_capabilities(test_env, monkeypatch):
    """``init`` includes the process capabilities whose module exists, and skips the others."""
    monkeypatch.setattr(
        setup_process, "_INIT_CAPABILITIES", ("loader_test_capability", "c2cwsgiutils.not_written_yet")
    )
    config = setup_process.init(f"c2c://{APP_INI}")
    assert config.registry["loader_test_capability"] is True


@pytest.mark.parametrize("item", ["TEST_GREETING", "=value"])
def test_a_configuration_variable_without_name_or_equals_is_refused(test_env, item):
    """``name=value`` is the only form; anything else is a one-line error naming the item."""
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser)
    args = parser.parse_args([f"c2c://{APP_INI}", item])
    with pytest.raises(ValueError, match=f"invalid configuration variable '{item}': expected name=value"):
        setup_process.bootstrap_application_from_options(args)
