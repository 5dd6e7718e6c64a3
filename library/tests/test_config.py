from __future__ import annotations

import logging

import pytest

from c2cwsgiutils import _settings, config_utils, get_config_defaults, get_paste_config


def test_env_wins_over_ini_and_default():
    """A non-empty env var beats the ini key, which beats the default."""
    settings = {"c2c.base_path": "/ini"}
    assert _settings.lookup(settings, "X", "c2c.base_path", "/d", environ={"X": "/env"}) == "/env"
    assert _settings.lookup(settings, "X", "c2c.base_path", "/d", environ={"X": ""}) == "/ini"
    assert _settings.lookup({}, "X", "c2c.base_path", "/d", environ={}) == "/d"


def test_converter_applies_to_values_not_default():
    """``type_`` converts env and ini values, the default is returned as given."""
    assert config_utils.env_or_settings({"k": "3"}, None, "k", "x", int) == 3
    assert config_utils.env_or_settings({}, None, "k", "x", int) == "x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("true", True), ("T", True), ("yes", True), ("1", True), ("0", False), ("false", False)],
)
def test_config_bool(value, expected):
    """Only the true-ish words are true."""
    assert config_utils.config_bool(value) is expected


def test_config_defaults_double_percent_and_drop_case_duplicates(caplog):
    """``%`` is escaped for configparser, and case-duplicate names are warned about and dropped."""
    with caplog.at_level(logging.WARNING):
        defaults = get_config_defaults({"TEST": "%1", "test": "%2", "OTHER": "x"})
    assert defaults == {"TEST": "%%1", "OTHER": "x"}
    assert "differ only by case" in caplog.text


def test_get_paste_config_forms():
    """All of gunicorn's --paste forms are recognised, with the env fallback."""
    assert get_paste_config(["gunicorn", "--paste=a.ini"], {}) == "a.ini"
    assert get_paste_config(["gunicorn", "--paster", "b.ini"], {}) == "b.ini"
    assert get_paste_config(["gunicorn"], {"C2CWSGIUTILS_CONFIG": "c.ini"}) == "c.ini"
    assert get_paste_config(["gunicorn"], {}) == "production.ini"


def test_settings_resolved_once_per_registry(monkeypatch):
    """Settings are read when the app is built; later env changes do not leak into the request path."""
    from pyramid.config import Configurator

    monkeypatch.setenv("C2C_BASE_PATH", "/admin")
    config = Configurator(settings={})
    assert config_utils.get_base_path(config) == "/admin"
    monkeypatch.setenv("C2C_BASE_PATH", "/other")
    assert config_utils.get_base_path(config) == "/admin"


def test_invalid_value_is_a_clear_configuration_error():
    """A knob that does not parse names the variable."""
    from pyramid.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="DEVELOPMENT"):
        _settings.resolve(_Numbers, {}, {"DEVELOPMENT": "x"})


import dataclasses  # noqa: E402


@dataclasses.dataclass(frozen=True)
class _Numbers:
    value: float = _settings.knob(1.0, env="DEVELOPMENT", convert=float)


def test_library_settings_classes_are_frozen_dataclasses():
    """Every settings class of the library is a frozen dataclass with defaults for every field.

    Each works as one: default instance, ``replace``, equality, hash, immutability.
    """
    classes = _settings.all_settings_classes()
    assert len(classes) > 10
    for cls in classes:
        assert dataclasses.is_dataclass(cls)
        value = cls()
        assert dataclasses.replace(value) == value
        assert hash(dataclasses.replace(value)) == hash(value)
        assert repr(value).startswith(f"{cls.__qualname__}(")
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, dataclasses.fields(cls)[0].name, None)
