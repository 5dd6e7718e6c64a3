from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import plaster
import pytest
import webtest

from c2cwsgiutils.loader import Loader

DATA = Path(__file__).parent / "loader_data"
BIN = Path(sys.executable).parent


@pytest.fixture
def test_env(monkeypatch):
    """The environment variables the test ini files refer to, and the test app on the path."""
    monkeypatch.setenv("TEST_GREETING", "bonjour")
    monkeypatch.setenv("TEST_PERCENT", "100%")
    monkeypatch.setenv("TEST_LOG_LEVEL", "DEBUG")
    monkeypatch.syspath_prepend(str(DATA))


def _subprocess_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEST_"))}
    env.update({"TEST_GREETING": "hola", "TEST_PERCENT": "5%", "TEST_LOG_LEVEL": "INFO"}, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DATA), env.get("PYTHONPATH")]))
    return env


def test_repr():
    """The loader shows its URI in its repr, under its own class name."""
    loader = plaster.get_loader("c2c:///app/production.ini")
    assert repr(loader) == 'c2cwsgiutils.loader.Loader(uri="c2c:///app/production.ini")'


@pytest.mark.parametrize("scheme", ["c2c", "c2c+ini", "c2c+egg"])
def test_schemes_are_registered(scheme):
    """The three schemes select our loader, as a plain and as a WSGI loader."""
    assert isinstance(plaster.get_loader(f"{scheme}://x.ini"), Loader)
    assert isinstance(plaster.get_loader(f"{scheme}://x.ini", protocols=["wsgi"]), Loader)


def test_relative_path_interpolates_environment(test_env, monkeypatch):
    """``c2c://file.ini`` reads the file relative to the working directory, with env vars."""
    monkeypatch.chdir(DATA)
    settings = plaster.get_settings("c2c://app.ini", "app:main")
    assert settings["greeting"] == "bonjour"
    assert settings["percent"] == "100%"


def test_absolute_path_interpolates_environment(test_env, tmp_path, monkeypatch):
    """``c2c:///abs/file.ini`` reads an absolute path, wherever the process runs."""
    monkeypatch.chdir(tmp_path)
    settings = plaster.get_settings(f"c2c://{DATA / 'app.ini'}", "app:main")
    assert settings["greeting"] == "bonjour"


def test_caller_defaults_win_over_environment(test_env):
    """Values given by the caller (``pserve app.ini name=value``) override the environment."""
    loader = plaster.get_loader(f"c2c://{DATA / 'app.ini'}")
    assert loader.get_settings("app:main", defaults={"TEST_GREETING": "hallo"})["greeting"] == "hallo"


def test_missing_variable_is_an_error(monkeypatch):
    """A ``%(NAME)s`` without variable fails loudly instead of producing a wrong value."""
    monkeypatch.delenv("TEST_GREETING", raising=False)
    loader = plaster.get_loader(f"c2c://{DATA / 'nologging.ini'}")
    with pytest.raises(Exception, match="TEST_GREETING"):
        loader.get_settings("app:main")


def test_get_wsgi_app(test_env):
    """The WSGI application is built with the interpolated settings."""
    app = webtest.TestApp(plaster.get_loader(f"c2c://{DATA / 'app.ini'}", protocols=["wsgi"]).get_wsgi_app())
    assert app.get("/bonjour").text == "bonjour"
    app.get("/hola", status=404)


def test_setup_logging_uses_the_ini_with_env(test_env, capsys):
    """Logging is configured from the ini: env-given level, ``kwargs`` handler with its own level."""
    plaster.get_loader(f"c2c://{DATA / 'app.ini'}").setup_logging()
    logger = logging.getLogger("c2cwsgiutils_loader_test")
    assert logger.level == logging.DEBUG
    assert logger.propagate is False
    logger.debug("filtered by the handler level")
    logger.info("shown")
    out = capsys.readouterr().out
    assert "INFO  c2cwsgiutils_loader_test shown" in out
    assert "filtered" not in out
    assert logging.getLogger().level == logging.WARNING


def test_setup_logging_caller_defaults(test_env):
    """Caller values are available to the logging sections too."""
    plaster.get_loader(f"c2c://{DATA / 'app.ini'}").setup_logging({"TEST_LOG_LEVEL": "ERROR"})
    assert logging.getLogger("c2cwsgiutils_loader_test").level == logging.ERROR


def test_setup_logging_without_sections(test_env):
    """Without logging sections, the basic configuration is used, as with PasteDeploy."""
    root = logging.getLogger()
    root.handlers[:] = []
    plaster.get_loader(f"c2c://{DATA / 'nologging.ini'}").setup_logging()
    assert len(root.handlers) == 1


def test_proutes_relative_path():
    """The real ``proutes c2c://app.ini`` lists the route whose path comes from the environment."""
    result = subprocess.run(
        [str(BIN / "proutes"), "c2c://app.ini"],
        cwd=DATA,
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "greeting" in result.stdout
    assert "/hola" in result.stdout


def test_proutes_absolute_path(tmp_path):
    """The real ``proutes c2c:///abs/app.ini`` works from any directory, with caller variables."""
    result = subprocess.run(
        [str(BIN / "proutes"), f"c2c://{DATA / 'app.ini'}", "TEST_GREETING=salut"],
        cwd=tmp_path,
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "/salut" in result.stdout


def test_pshell_sees_interpolated_settings():
    """The real ``pshell c2c://app.ini`` loads the application with the environment's values."""
    result = subprocess.run(
        [str(BIN / "pshell"), "c2c://app.ini"],
        cwd=DATA,
        env=_subprocess_env(TEST_GREETING="ciao"),
        input="print('GREETING=' + registry.settings['greeting'])\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "GREETING=ciao" in result.stdout


def test_uri_options_win_over_environment(test_env):
    """``c2c://app.ini?TEST_GREETING=...`` wins over the variable of the environment."""
    loader = plaster.get_loader(f"c2c://{DATA / 'app.ini'}?TEST_GREETING=hej")
    assert loader.get_settings("app:main")["greeting"] == "hej"
    assert loader.get_wsgi_app_settings("main")["greeting"] == "hej"
