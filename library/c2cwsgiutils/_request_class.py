"""Request methods and properties compiled into one request class, instead of once per request.

Pyramid applies the ``config.add_request_method`` extensions to every request it creates: it binds
each method and, when there is any property (``pyramid_tm``'s ``request.tm``, cornice's
``request.current_service``, ``request.dbsession``, ``request.c2c_request_id``), builds a new
class with ``type()`` for that single request. That costs more than the rest of a small view.

When the application is created, :func:`compile_request_class` makes one subclass of the request
factory with every extension as a class attribute, and lets the router create its requests from
it. Requests behave the same: the methods are bound methods, the reified properties are computed
once per request and stored on it. What stays untouched: the registered ``IRequestExtensions``
(``pyramid.request.apply_request_extensions`` on a hand-made request, sub-requests, and
``pyramid.scripting.prepare`` still apply them) and applications whose request factory is not a
class (they keep Pyramid's own path).
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["compile_request_class"]

_LOG = logging.getLogger(__name__)


def _compiled_class(factory: type, extensions: Any) -> type:
    attrs: dict[str, Any] = {"__module__": factory.__module__, "__doc__": factory.__doc__}
    attrs.update(extensions.methods)
    attrs.update(extensions.descriptors)
    return type(factory.__name__, (factory,), attrs)


def compile_request_class(event: Any) -> None:
    """``ApplicationCreated`` subscriber: make the router create requests of one compiled class."""
    from pyramid.request import Request
    from pyramid.threadlocal import RequestContext

    router = event.app
    extensions = getattr(router, "request_extensions", None)
    factory = getattr(router, "request_factory", None)
    if extensions is None or not isinstance(factory, type) or not issubclass(factory, Request):
        return
    if not extensions.methods and not extensions.descriptors:
        return
    request_class = _compiled_class(factory, extensions)
    registry = router.registry
    invoke_subrequest = router.invoke_subrequest

    def request_context(environ: dict[str, Any]) -> Any:
        request = request_class(environ)
        request.registry = registry
        request.invoke_subrequest = invoke_subrequest
        return RequestContext(request)

    # An instance attribute: the router's class (and other applications in the process) keep
    # Pyramid's method. Execution policies (the default one, pyramid_retry's) call this.
    router.request_context = request_context
    _LOG.debug(
        "Request extensions compiled into one class: %s",
        ", ".join(sorted([*extensions.methods, *extensions.descriptors])),
    )
