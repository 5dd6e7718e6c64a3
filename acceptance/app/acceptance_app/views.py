"""The views: cornice services with CORS (``c2cwsgiutils.services``) and plain Pyramid views."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import sqlalchemy
from c2cwsgiutils import broadcast, services
from pyramid.httpexceptions import HTTPBadRequest, HTTPException, exception_response
from pyramid.view import view_config

from acceptance_app.metrics import HITS
from acceptance_app.models import Hello

_LOG = logging.getLogger(__name__)
MAX_SLEEP = 10.0

ping_service = services.create("ping", "/api/ping")
hello_service = services.create("hello", "/api/hello", cors_credentials=True)
db_service = services.create("db_where", "/api/db/{where}")
error_service = services.create("error", "/api/error")
pids_service = services.create("pids", "/api/pids")
slow_service = services.create("slow", "/api/slow")


@ping_service.get()
def ping(request: Any) -> dict[str, Any]:
    """Answer with the request id and the process id, and log the call."""
    _LOG.info("ping from the acceptance tests")
    return {"pong": True, "request_id": request.c2c_request_id, "pid": os.getpid()}


@hello_service.get()
def list_hello(request: Any) -> dict[str, Any]:
    """List the rows (GET: read on the replica)."""
    HITS.labels(method="GET").inc()
    rows = request.dbsession.scalars(sqlalchemy.select(Hello).order_by(Hello.id))
    return {"hello": [row.as_json() for row in rows]}


@hello_service.put()
def add_hello(request: Any) -> dict[str, Any]:
    """Add a row from ``{"value": "..."}`` (PUT: written on the primary); a duplicate value is a 400."""
    HITS.labels(method="PUT").inc()
    try:
        value = request.json_body["value"]
    except (ValueError, KeyError, TypeError) as error:
        msg = 'The body must be JSON: {"value": "..."}'
        raise HTTPBadRequest(msg) from error
    row = Hello(value=str(value))
    request.dbsession.add(row)
    request.dbsession.flush()
    return row.as_json()


@db_service.get()
@db_service.post()
def where(request: Any) -> dict[str, Any]:
    """Tell which PostgreSQL server the request's session is on (``pg_is_in_recovery``: the replica)."""
    readonly = request.dbsession.execute(sqlalchemy.text("SELECT pg_is_in_recovery()")).scalar_one()
    return {"replica": bool(readonly), "pid": os.getpid()}


@error_service.get()
def error(request: Any) -> None:
    """Raise the HTTP error ``code``, or a plain exception (a 500 sent to Sentry) without it."""
    code = request.params.get("code")
    if code is None:
        msg = f"Failure asked by the acceptance tests ({request.params.get('tag', '')})"
        raise RuntimeError(msg)
    try:
        status = int(code)
    except ValueError as exc:
        raise HTTPBadRequest("code must be an integer") from exc
    response = exception_response(status, detail="Asked by the acceptance tests")
    if isinstance(response, HTTPException):
        raise response


@pids_service.get()
def pids(request: Any) -> dict[str, Any]:
    """Broadcast to every process of the service and list their process ids."""
    del request
    answers = get_pid()
    return {"pids": sorted(answer for answer in answers if answer is not None)}


@broadcast.decorator(expect_answers=True, timeout=5)
def get_pid() -> int:
    """Run in every process of the service (the decorated function takes keyword arguments only)."""
    return os.getpid()


@slow_service.get()
def slow(request: Any) -> dict[str, Any]:
    """Answer after ``seconds`` (at most 10): the in-flight request of a graceful stop."""
    try:
        seconds = min(float(request.params.get("seconds", "1")), MAX_SLEEP)
    except ValueError as exc:
        raise HTTPBadRequest("seconds must be a number") from exc
    time.sleep(seconds)
    return {"slept": seconds, "pid": os.getpid()}


@view_config(route_name="log_request_id", renderer="json")
def log_request_id(request: Any) -> dict[str, str]:
    """Log a line carrying the request id (JSON logs show it as ``request_id``)."""
    _LOG.warning("Logging with the request id %s", request.c2c_request_id)
    return {"request_id": request.c2c_request_id}


def includeme(config: Any) -> None:
    """Routes of the plain Pyramid views."""
    config.add_route("log_request_id", "/api/log", request_method="GET")
