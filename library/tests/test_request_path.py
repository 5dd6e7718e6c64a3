"""The request path: request extensions, request factories, header updates, lazy patches, request ids."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import pytest
import webob
import webtest
from pyramid.config import Configurator
from pyramid.request import Request, apply_request_extensions

from c2cwsgiutils import _headers, _post_import
from c2cwsgiutils.request_tracking import _traceparent


def _seen(request):
    return {
        "request_id": request.c2c_request_id,
        "tm": type(request.tm).__name__,
        "greeting": request.greeting("you"),
        "late": request.late,
        "computed": request.counter,
        "computed_again": request.counter,
    }


def _app() -> webtest.TestApp:
    calls = []

    def counter(request):
        calls.append(request)
        return len(calls)

    with Configurator(settings={}) as config:
        config.include("c2cwsgiutils.pyramid")
        config.add_request_method(lambda request, name: f"hello {name}", "greeting")
        config.add_request_method(counter, "counter", reify=True)
        config.add_route("seen", "/seen")
        config.add_view(_seen, route_name="seen", renderer="json")
        config.add_route("sub", "/sub")
        config.add_view(lambda request: request.invoke_subrequest(Request.blank("/seen")), route_name="sub")
        config.commit()
        # Added after a commit: the requests get it too.
        config.add_request_method(lambda request: "late", "late", property=True)
        return webtest.TestApp(config.make_wsgi_app())


def test_every_request_gets_every_extension() -> None:
    """The library's and the application's request methods and properties are on every request."""
    app = _app()
    first = app.get("/seen", headers={"X-Request-ID": "first"}).json
    second = app.get("/seen", headers={"X-Request-ID": "second"}).json
    assert (first["request_id"], second["request_id"]) == ("first", "second")
    assert first["tm"] == second["tm"] == "ThreadTransactionManager"
    assert first["greeting"] == "hello you"
    assert first["late"] == "late"
    # Reified: computed once per request, and again for the next request.
    assert first["computed"] == first["computed_again"]
    assert second["computed"] == second["computed_again"] == first["computed"] + 1


def test_a_subrequest_made_by_hand_gets_the_extensions() -> None:
    """``request.invoke_subrequest`` of a hand-made request gives it the extensions."""
    response = _app().get("/sub", headers={"X-Request-ID": "outer"})
    assert response.json["greeting"] == "hello you"
    assert response.json["late"] == "late"


def test_a_request_made_outside_the_router_can_still_get_the_extensions() -> None:
    """``apply_request_extensions`` gives a hand-made request the library's properties."""
    app = _app()
    request = Request.blank("/seen", headers={"X-Request-ID": "by-hand"})
    request.registry = app.app.registry
    apply_request_extensions(request)
    assert request.c2c_request_id == "by-hand"
    assert request.greeting("me") == "hello me"


class _AppRequest(Request):
    """An application's own request class."""

    def shout(self, text: str) -> str:
        return text.upper()


def _factory_function(environ):
    return _AppRequest(environ)


@pytest.mark.parametrize("factory", [_AppRequest, _factory_function], ids=["class", "function"])
def test_the_application_request_factory_is_used_with_the_extensions(factory) -> None:
    """With ``config.set_request_factory``, requests are the application's, with the library's properties."""
    with Configurator(settings={}) as config:
        config.include("c2cwsgiutils.pyramid")
        config.set_request_factory(factory)
        config.add_route("seen", "/seen")
        config.add_view(
            lambda request: {
                "id": request.c2c_request_id,
                "tm": type(request.tm).__name__,
                "shout": request.shout("hi"),
                "own": isinstance(request, _AppRequest),
            },
            route_name="seen",
            renderer="json",
        )
        app = webtest.TestApp(config.make_wsgi_app())
    assert app.get("/seen", headers={"X-Request-ID": "kept"}).json == {
        "id": "kept",
        "tm": "ThreadTransactionManager",
        "shout": "HI",
        "own": True,
    }


def test_the_router_keeps_pyramids_own_request_path() -> None:
    """The include assigns nothing on Pyramid's router: requests are made by Pyramid's own code."""
    assert "request_context" not in vars(_app().app)


def test_header_setter_replaces_case_insensitively_and_appends() -> None:
    response = webob.Response()
    response.headerlist[:] = [
        ("x-request-id", "old"),
        ("Server-Timing", "db;dur=1"),
        ("Keep", "me"),
        ("server-timing", "cache;dur=0"),
    ]
    setter = _headers.HeaderSetter(
        ("X-Request-ID", "Server-Timing", "traceparent"), append=("server-timing",)
    )
    setter(
        response, (("X-Request-ID", "new"), ("Server-Timing", "route;dur=2"), ("traceparent", "00-a-b-01"))
    )
    assert response.headerlist == [
        ("Keep", "me"),
        ("X-Request-ID", "new"),
        ("Server-Timing", "db;dur=1, cache;dur=0, route;dur=2"),
        ("traceparent", "00-a-b-01"),
    ]


def test_header_setter_adds_headers_after_the_others() -> None:
    response = webob.Response(json_body={"a": 1})
    before = list(response.headerlist)
    _headers.HeaderSetter(("Server-Timing",), append=("Server-Timing",))(
        response, (("Server-Timing", "route;dur=2"),)
    )
    assert response.headerlist == [*before, ("Server-Timing", "route;dur=2")]


def test_when_imported_runs_at_once_for_an_imported_module() -> None:
    seen = []
    _post_import.when_imported("json", seen.append)
    assert seen == [sys.modules["json"]]


def test_a_cancelled_hook_never_runs() -> None:
    seen = []
    _post_import.when_imported("c2cwsgiutils_no_such_module", seen.append)
    _post_import.cancel("c2cwsgiutils_no_such_module", seen.append)
    _post_import.run_pending()
    assert seen == []
    assert "c2cwsgiutils_no_such_module" not in _post_import.pending


def test_no_import_hook_is_installed() -> None:
    """The library leaves the import system alone: no finder of its own in sys.meta_path."""
    script = textwrap.dedent(
        """
        import sys
        before = list(sys.meta_path)
        from pyramid.config import Configurator
        with Configurator(settings={}) as config:
            config.include("c2cwsgiutils.pyramid")
            app = config.make_wsgi_app()
        added = [finder for finder in sys.meta_path if finder not in before]
        print([type(f).__module__ for f in added if type(f).__module__.startswith("c2cwsgiutils")])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split("\n")[0] == "[]", result.stderr


def test_requests_is_wrapped_once_the_application_imports_it() -> None:
    """The include does not import requests, redis or SQLAlchemy; each gets its wrapper once imported.

    Imported before the application is created (by the application's modules or its scan), they
    are wrapped when it is created; imported later (in a view), before the next request.
    """
    script = textwrap.dedent(
        """
        import sys
        import webtest
        from pyramid.config import Configurator
        with Configurator(settings={}) as config:
            config.include("c2cwsgiutils.pyramid")
            import sqlalchemy.orm
            app = config.make_wsgi_app()
        print(sorted(m for m in ("requests", "redis", "sqlalchemy") if m in sys.modules))
        from c2cwsgiutils.stats_pyramid import _sql
        print(_sql._INSTALLED)
        import requests.adapters, redis.client
        print(hasattr(requests.adapters.HTTPAdapter.send, "__wrapped__"),
              hasattr(redis.client.Redis.execute_command, "__wrapped__"))
        webtest.TestApp(app).get("/nothing", status=404)
        print(hasattr(requests.adapters.HTTPAdapter.send, "__wrapped__"),
              hasattr(redis.client.Redis.execute_command, "__wrapped__"))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split("\n")[:4] == ["['sqlalchemy']", "True", "False False", "True True"], (
        result.stdout + result.stderr
    )


def test_request_ids_are_version_4_uuids() -> None:
    ids = {_traceparent.new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in ids:
        value = uuid.UUID(text)
        assert (value.version, value.variant, str(value)) == (4, uuid.RFC_4122, text)


def test_forked_workers_draw_different_identifiers() -> None:
    """Gunicorn forks its workers (after preloading the application): each has its own sequence."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  # the child process
        os.write(write, _traceparent.new_trace_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert len(child) == 32
    assert child != _traceparent.new_trace_id()
