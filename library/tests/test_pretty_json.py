import datetime as dt
import decimal
import json
import sys
import uuid

import pytest
from pyramid.interfaces import IRendererFactory

from c2cwsgiutils.pretty_json import fast_dumps

_INCLUDES = ("cornice", "c2cwsgiutils.pretty_json")
_VALUE = {"name": "Zürich → Genève", "b": 1, "a": [1, 2], "path": "a/b"}


class _Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


class _WithJson:
    def __json__(self, request):
        return {"json": True}


class _Opaque:
    def __str__(self) -> str:
        return "opaque-object"


def _configure(value):
    def configure(config):
        for renderer in ("json", "fast_json", "cornice_json", "cornice_fast_json"):
            config.add_route(renderer, f"/{renderer}")
            config.add_view(lambda _request: value, route_name=renderer, renderer=renderer)

    return configure


@pytest.fixture
def make(app_factory):
    """Build the test application with extra settings."""

    def build(value=_VALUE, settings=None, configure_more=None):
        configure = _configure(value)

        def both(config):
            configure(config)
            if configure_more is not None:
                configure_more(config)

        return app_factory(settings or {}, includes=_INCLUDES, configure=both)

    return build


@pytest.mark.parametrize("renderer", ["fast_json", "cornice_fast_json"])
def test_fast_json_keeps_non_ascii_and_slashes(make, renderer):
    """The fast renderers write non-ASCII characters as UTF-8 and do not escape slashes."""
    response = make().get(f"/{renderer}")

    assert response.content_type == "application/json"
    assert "Zürich → Genève".encode() in response.body
    assert b'"a/b"' in response.body
    assert response.json == _VALUE


@pytest.mark.parametrize("renderer", ["json", "cornice_json"])
def test_json_renderer_is_the_standard_library(make, renderer):
    """The ``json`` renderers produce standard JSON that reads back to the same value."""
    response = make().get(f"/{renderer}")

    assert response.content_type == "application/json"
    assert response.json == _VALUE


@pytest.mark.parametrize("renderer", ["json", "fast_json", "cornice_json", "cornice_fast_json"])
def test_compact_and_unsorted_by_default(make, renderer):
    """By default the output is on one line and keeps the insertion order of the keys."""
    body = make().get(f"/{renderer}").text

    assert "\n" not in body
    assert body.index('"name"') < body.index('"b"') < body.index('"a"')


@pytest.mark.parametrize("renderer", ["json", "fast_json", "cornice_json", "cornice_fast_json"])
def test_sort_keys_setting(make, renderer):
    """``c2c.json.sort_keys`` sorts the keys of every object."""
    body = make(settings={"c2c.json.sort_keys": "true"}).get(f"/{renderer}").text

    assert body.index('"a"') < body.index('"b"') < body.index('"name"') < body.index('"path"')


@pytest.mark.parametrize("renderer", ["json", "fast_json", "cornice_json", "cornice_fast_json"])
def test_pretty_print_from_environment(make, renderer, monkeypatch):
    """``C2C_JSON_PRETTY_PRINT`` indents the output by two spaces, and wins over the ini key."""
    monkeypatch.setenv("C2C_JSON_PRETTY_PRINT", "1")

    body = make(settings={"c2c.json.pretty_print": "false"}).get(f"/{renderer}").text

    assert '\n  "name": ' in body
    assert json.loads(body) == _VALUE


def test_false_settings_keep_defaults(make):
    """Settings set to ``false`` neither sort nor indent."""
    body = make(settings={"c2c.json.pretty_print": "false", "c2c.json.sort_keys": "0"}).get("/fast_json").text

    assert body.startswith('{"name":')


def test_fast_json_serializes_odd_values(make):
    """The fast renderer handles dates, UUIDs, decimals, huge integers, ``__json__`` and adapters."""
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = {
        "date": dt.date(2024, 1, 2),
        "uuid": ident,
        "decimal": decimal.Decimal("1.5"),
        "with_json": _WithJson(),
        "point": _Point(1, 2),
        "opaque": _Opaque(),
        "int_keys": {1: "one"},
    }

    def adapters(config):
        config.commit()  # the renderers are registered by a configuration action
        for name in ("fast_json", "json"):
            renderer = config.registry.queryUtility(IRendererFactory, name=name)
            renderer.add_adapter(_Point, lambda obj, _request: [obj.x, obj.y])

    result = make(value, configure_more=adapters).get("/fast_json").json

    assert result == {
        "date": "2024-01-02",
        "uuid": str(ident),
        "decimal": "1.5",
        "with_json": {"json": True},
        "point": [1, 2],
        "opaque": "opaque-object",
        "int_keys": {"1": "one"},
    }


def test_fast_json_huge_integer(make):
    """Integers beyond 64 bits, which orjson refuses, are still serialized exactly."""
    result = make({"big": 2**70, "text": "é"}).get("/fast_json")

    assert result.json == {"big": 2**70, "text": "é"}
    assert "é".encode() in result.body


def test_standard_json_refuses_unknown_objects(make):
    """The ``json`` renderer keeps Pyramid's behaviour: an object without adapter is an error."""
    app = make({"opaque": _Opaque()})

    with pytest.raises(TypeError, match="not JSON serializable"):
        app.get("/json")


def test_fast_dumps_options():
    """``fast_dumps`` takes the ``json.dumps`` options that Pyramid passes."""
    assert fast_dumps({"b": 1, "a": "é"}) == '{"b":1,"a":"é"}'
    assert fast_dumps([_Opaque(), decimal.Decimal("2.5")]) == '["opaque-object","2.5"]'
    assert fast_dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a":2,"b":1}'
    assert fast_dumps({"a": [1]}, indent=2) == '{\n  "a": [\n    1\n  ]\n}'
    assert (
        fast_dumps({"b": 2**65, "a": 1}, sort_keys=True, indent=4)
        == '{\n  "a": 1,\n  "b": 36893488147419103232\n}'
    )


def test_cornice_fast_json_renders_validation_errors(app_factory):
    """The cornice variant renders cornice's validation errors as JSON (400)."""
    from cornice import Service

    service = Service("validated", "/validated", renderer="cornice_fast_json")

    def validator(request, **kwargs):
        request.errors.add("querystring", "name", "Nom obligatoire é")

    @service.get(validators=(validator,))
    def get(request):
        return {"ok": True}

    app = app_factory({}, includes=_INCLUDES, configure=lambda config: config.add_cornice_service(service))

    response = app.get("/validated", status=400)

    assert response.content_type == "application/json"
    assert response.json["status"] == "error"
    assert response.json["errors"][0]["description"] == "Nom obligatoire é"


def test_without_cornice(app_factory, monkeypatch):
    """Without cornice installed, the plain renderers are still registered."""
    monkeypatch.setitem(sys.modules, "cornice.renderer", None)

    def configure(config):
        config.add_route("plain", "/plain")
        config.add_view(lambda _request: {"é": 1}, route_name="plain", renderer="fast_json")

    app = app_factory({}, includes=("c2cwsgiutils.pretty_json",), configure=configure)

    assert app.get("/plain").json == {"é": 1}
