from __future__ import annotations

import logging
from typing import Any

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


def _fields() -> type:
    """A new class with the fields compared below (each decorator gets its own)."""

    class Fields:
        name: str
        level: int = 1
        tags: tuple[str, ...] = dataclasses.field(default=(), compare=False)
        secret: str = dataclasses.field(default="", repr=False)
        items: list[str] = dataclasses.field(default_factory=list, hash=False, compare=False)

    return Fields


_Shared: Any = _settings.frozen_dataclass(_fields())
_Standard: Any = dataclasses.dataclass(frozen=True)(_fields())


def test_frozen_dataclass_behaves_like_the_standard_one():
    """Same constructor, repr, equality, hash and immutability as ``dataclass(frozen=True)``."""
    for cls in (_Shared, _Standard):
        value = cls("a", level=2, tags=("x",), secret="s")
        assert dataclasses.is_dataclass(value)
        assert [field.name for field in dataclasses.fields(cls)] == [
            "name",
            "level",
            "tags",
            "secret",
            "items",
        ]
        assert (value.name, value.level, value.tags, value.secret, value.items) == ("a", 2, ("x",), "s", [])
        assert repr(value) == f"{cls.__qualname__}(name='a', level=2, tags=('x',), items=[])"
        assert value == cls("a", 2, ("other",), "s")
        assert value != cls("a", 3)
        assert hash(value) == hash(cls("a", 2, secret="s", items=["x"]))
        assert cls("b").items is not cls("b").items
        assert dataclasses.replace(value, level=5) == cls("a", 5, secret="s")
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.name = "b"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del value.name  # type: ignore[misc]
    assert _Shared("a") != _Standard("a")
    assert _Shared.__init__ is _settings.CoreSettings.__init__  # shared: nothing compiled per class


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("a", 1, (), "", [], "extra"), {}, "takes 5 positional arguments but 6 were given"),
        (("a",), {"name": "b"}, "multiple values for argument 'name'"),
        ((), {}, "missing required argument: 'name'"),
        (("a",), {"other": 1}, "unexpected keyword argument 'other'"),
    ],
)
def test_frozen_dataclass_rejects_wrong_arguments(args, kwargs, message):
    """The shared ``__init__`` raises the ``TypeError`` of a generated one."""
    with pytest.raises(TypeError, match=message):
        _Shared(*args, **kwargs)


def test_frozen_dataclass_refuses_what_it_does_not_support():
    """Own methods, ``__post_init__`` and keyword-only fields need the standard decorator."""

    class OwnEq:
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = None  # type: ignore[assignment]

    class PostInit:
        def __post_init__(self) -> None:
            pass

    class KeywordOnly:
        value: int = dataclasses.field(default=0, kw_only=True)

    for cls, message in (
        (OwnEq, "defines __eq__"),
        (PostInit, "__post_init__"),
        (KeywordOnly, "keyword-only"),
    ):
        with pytest.raises(TypeError, match=message):
            _settings.frozen_dataclass(cls)


def test_library_settings_classes_share_the_frozen_methods():
    """Every settings class of the library is made by ``frozen_dataclass``: none compiles methods at start-up.

    And each still works as a frozen dataclass: default instance, ``replace``, equality, hash, repr.
    """
    classes = _settings.all_settings_classes()
    assert len(classes) > 10
    shared = vars(_settings.CoreSettings)
    for cls in classes:
        assert all(vars(cls).get(name) is shared[name] for name in ("__init__", "__repr__", "__eq__")), (
            f"{cls.__qualname__}: use @_settings.frozen_dataclass (start-up time, see its docstring)"
        )
        value = cls()
        assert dataclasses.replace(value) == value
        assert hash(dataclasses.replace(value)) == hash(value)
        assert repr(value).startswith(f"{cls.__qualname__}(")
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, dataclasses.fields(cls)[0].name, None)
