"""Pyramid event dispatch that looks the subscribers of an event class up once, not on every event.

Once an application has a subscriber (cornice's, the library's), Pyramid notifies five events per
request (``NewRequest``, ``BeforeTraversal``, ``ContextFound``, ``BeforeRender``, ``NewResponse``).
Each ``registry.notify`` goes through zope.interface's component registry: the interfaces the
event provides, then the adapter registry's lookup of the subscribers, several layers of Python
calls for an answer that only depends on the event's class while the registrations stay the same.

:func:`install` gives the application's registry a ``notify`` that keeps the subscribers per
event specification (the class of almost every event), and looks them up again when anything is
registered or unregistered (the adapter registry's generation changes). Events that provide
interfaces of their own (``zope.interface.alsoProvides``) get the subscribers of what they
provide, as with zope; multi-object notifications take zope's path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["fast_notify", "install", "on_application_created"]

_CACHE_SIZE = 256


def fast_notify(registry: Any) -> Callable[..., None]:
    """Return a ``registry.notify`` that caches the subscribers of each event specification.

    Args:
        registry: the application's Pyramid registry.
    """
    from zope.interface import providedBy

    adapters = registry.adapters
    original = type(registry).notify
    # What an event provides (its class's declaration, or one of its own) -> its subscribers.
    cache: dict[Any, tuple[Any, ...]] = {}
    generation = [adapters._generation]  # noqa: SLF001  # zope's change counter

    def notify(*events: Any) -> None:
        """Call the subscribers of ``events``, like ``pyramid.registry.Registry.notify``."""
        if not registry.has_listeners:
            return
        if len(events) != 1:
            original(registry, *events)
            return
        if adapters._generation != generation[0]:  # noqa: SLF001  # something was (un)registered
            cache.clear()
            generation[0] = adapters._generation  # noqa: SLF001
        event = events[0]
        provided = providedBy(event)
        subscribers = cache.get(provided)
        if subscribers is None:
            subscribers = tuple(adapters.subscriptions((provided,), None))
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[provided] = subscribers
        for subscriber in subscribers:
            subscriber(event)

    return notify


def install(registry: Any) -> None:
    """Give ``registry`` a :func:`fast_notify` (unless zope.interface lacks what it relies on)."""
    if isinstance(getattr(getattr(registry, "adapters", None), "_generation", None), int):
        registry.notify = fast_notify(registry)


def on_application_created(event: Any) -> None:
    """``ApplicationCreated`` subscriber: install :func:`fast_notify` on the application's registry."""
    install(event.app.registry)
