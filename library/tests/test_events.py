"""Events of an application that includes ``c2cwsgiutils.pyramid`` reach their subscribers through Pyramid."""

from __future__ import annotations

import webtest
import zope.interface
from pyramid.config import Configurator
from pyramid.events import NewRequest, NewResponse
from pyramid.registry import Registry

from c2cwsgiutils import testing


class IAudited(zope.interface.Interface):
    """An interface that some events provide on their own."""


class IThing(zope.interface.Interface):
    """The object of a two-object notification."""


@zope.interface.implementer(IThing)
class Thing:
    """An object with an interface."""


class Happened:
    """An application event."""


def _app(calls):
    def configure(config):
        config.add_subscriber(lambda event: calls.append(("new request", event.request.path)), NewRequest)
        config.add_subscriber(lambda event: calls.append(("happened", type(event).__name__)), Happened)
        config.add_subscriber(lambda event: calls.append(("audited", type(event).__name__)), IAudited)
        config.add_subscriber(
            lambda thing, event: calls.append(("thing", type(event).__name__)), [IThing, Happened]
        )
        config.add_route("hello", "/hello")
        config.add_view(lambda request: {"hello": 1}, route_name="hello", renderer="json")

    return testing.make_app({}, configure=configure)


def test_subscribers_run_once_per_event():
    """Each request notifies the application's subscribers once, as plain Pyramid does."""
    calls = []
    client = webtest.TestApp(_app(calls))
    client.get("/hello")
    client.get("/hello")
    assert calls == [("new request", "/hello"), ("new request", "/hello")]
    # The library's own subscribers ran too: cornice's header, the render time of the stats.
    response = client.get("/hello")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "render;dur=" in response.headers["Server-Timing"]


def test_subscriber_added_after_creation_is_called():
    """A subscriber registered once the application runs is called from the next event on."""
    calls = []
    app = _app(calls)
    client = webtest.TestApp(app)
    client.get("/hello")
    config = Configurator(registry=app.registry)
    config.add_subscriber(lambda event: calls.append(("response", event.response.status_code)), NewResponse)
    config.commit()
    client.get("/hello")
    assert calls == [("new request", "/hello"), ("new request", "/hello"), ("response", 200)]


def test_events_with_their_own_interfaces_and_several_objects():
    """An event that also provides an interface reaches its subscribers; two-object notifications work."""
    calls = []
    registry = _app(calls).registry
    registry.notify(Happened())
    audited = Happened()
    zope.interface.alsoProvides(audited, IAudited)
    registry.notify(audited)
    registry.notify(Happened())
    registry.notify(Thing(), Happened())
    assert calls == [
        ("happened", "Happened"),
        ("happened", "Happened"),
        ("audited", "Happened"),
        ("happened", "Happened"),
        ("thing", "Happened"),
    ]


def test_the_registry_keeps_pyramids_notify():
    """The include assigns nothing on Pyramid's registry: events go through Pyramid's own ``notify``."""
    registry = _app([]).registry
    assert "notify" not in vars(registry)
    assert type(registry).notify is Registry.notify
