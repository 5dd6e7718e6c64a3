"""JSON error views: every exception a view raises becomes a JSON answer with the right status.

Enabled by ``C2C_ENABLE_EXCEPTION_HANDLING`` / ``c2c.enable_exception_handling`` (a boolean:
``1``, ``true``, ``yes``...; ``0``, ``false`` or empty disable it; default disabled).

The body is ``{"message", "status", "request_id"}``; clients that prefer
``application/problem+json`` in ``Accept`` get an RFC 9457 problem document instead
(``type``, ``title``, ``status``, ``detail``, ``instance``, ``request_id``). The request id is the
one of the logs, so an operator can find the details of an error from its answer.

Secure by default: in production mode (``DEVELOPMENT`` false) and for requests that are not
authenticated (see :mod:`c2cwsgiutils.auth`), an unexpected exception answers the generic message
``Internal Server Error`` (never ``str(exception)``) without a stack trace. In development
mode, or with the secret, the message is ``str(exception)`` and a ``stacktrace`` is added.
Requests whose URL, query string or form body is not valid UTF-8 answer 400, never 500.
Secrets are masked in the log lines and in the bodies (see :mod:`c2cwsgiutils._redact`): the
value of a secret parameter whatever the spelling of its name (``?%73ecret=``), and the
configured secret wherever it appears, raw or percent-encoded.

Errors caused by the client's data, SQLAlchemy's ``IntegrityError`` and ``DataError`` (also
when ``pyramid_tm`` raises them at commit), answer 400 with the database's own primary message
in production too (for example ``duplicate key value violates unique constraint
"items_name_key"``), which clients show or match: never the SQL statement, its parameters or
the ``DETAIL`` line (which can show the values stored in other rows). The message is the driver's
diagnostics ``orig.diag.message_primary`` (psycopg 3 and psycopg2), else the first line of the
driver's error text, cut at 1000 characters.

Whether the error views are enabled or not, every response with a status of 500 or more (and
every exception that reaches the server) is logged at WARNING by a tween, with the method, the
path and the route name (``GET /path returned status code 503 (route: name)``), including the
5xx responses that views return without raising; except the 500 answered to a client that
disconnected, logged at INFO only. Raised HTTP errors are also logged by the error view: 401 at
DEBUG, 500 at ERROR, the others at WARNING.

.. versionadded:: 6.0
.. versionchanged:: 6.2
   The database's primary message for integrity and data errors in production; a WARNING for
   every 5xx response.
"""

from __future__ import annotations

import logging
import re
import traceback
import urllib.parse
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import orjson

from c2cwsgiutils import _settings, auth
from c2cwsgiutils._redact import redact as _redact
from c2cwsgiutils._safety import never_raise, swallow

__all__ = ["ErrorSettings", "includeme", "server_error_tween_factory"]

_LOG = logging.getLogger(__name__)

_JSON = "application/json"
_PROBLEM = "application/problem+json"
_OFFERS = (_JSON, _PROBLEM)
# Headers of an HTTP exception that describe its own (HTML) body: not copied to the JSON answer.
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "content-range"})
_METHOD_RE = re.compile(r"[A-Za-z]{1,20}")
_MAX_STATUS = 599
_DECODE_MESSAGE = "Bad Request: the URL, query string or form body is not valid UTF-8"
# A database message can quote the client's value (invalid input syntax for type integer: "...").
_MAX_DB_MESSAGE = 1000
# Set in the environ by the answer to a client that went away: its 500 is only worth INFO.
_DISCONNECTED = "c2cwsgiutils.errors.disconnected"
# Used when the driver's error has no message at all.
_DB_MESSAGES = {
    "IntegrityError": "Bad Request: the data conflicts with a database constraint",
    "DataError": "Bad Request: the data is not valid for the database",
}


@_settings.frozen_dataclass
class ErrorSettings:
    """Settings of the JSON error views."""

    enabled: bool = _settings.knob(
        False,
        env="C2C_ENABLE_EXCEPTION_HANDLING",
        ini="c2c.enable_exception_handling",
        convert=_settings.as_bool,
        doc="Install the JSON error views.",
    )


def _reason(status: int) -> str:
    from webob.response import status_reasons

    return str(status_reasons.get(status, "Error"))


def _safe_path(request: Any) -> str:
    try:
        return str(request.path)
    except UnicodeDecodeError:
        environ = request.environ
        raw = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        return urllib.parse.quote(raw.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~")


def _safe_url(request: Any) -> str:
    try:
        return str(request.url)
    except UnicodeDecodeError:
        query = str(request.environ.get("QUERY_STRING", ""))
        return f"{request.host_url}{_safe_path(request)}{'?' + query if query else ''}"


def _request_id(request: Any) -> str:
    try:
        return str(request.c2c_request_id)
    except AttributeError:
        # request_tracking is not included: the id is still unique, if not found in the logs.
        return str(uuid.uuid4())


def _show_details(request: Any) -> bool:
    if _settings.get(request.registry, _settings.CoreSettings).development:
        return True
    authenticated = False
    with never_raise("checking the authentication for error details"):
        authenticated = auth.is_auth(request)
    return authenticated  # noqa: RET504  # never_raise may swallow the error: the default stays


def _wants_problem(request: Any) -> bool:
    accept = request.accept
    qualities = dict(accept.acceptable_offers(_OFFERS))
    problem, legacy = float(qualities.get(_PROBLEM, 0.0)), float(qualities.get(_JSON, 0.0))
    if problem != legacy:
        return problem > legacy
    # Same quality (e.g. "*/*"): problem+json only if the client named it.
    parsed = getattr(accept, "parsed", None) or ()
    return problem > 0 and any(str(item[0]).lower() == _PROBLEM for item in parsed)


def _no_cache(response: Any) -> Any:
    response.cache_expires(0)
    return response


def _cornice_cors(request: Any, response: Any) -> bool:
    if request.matched_route is None or not getattr(request.registry, "cornice_services", None):
        return False
    from cornice.cors import apply_cors_post_request
    from cornice.util import current_service

    service = current_service(request)
    if service is None:
        return False
    if service.cors_enabled:
        # A new response: cornice must check the origin again (as its own exception view does).
        request.info["cors_checked"] = False
        apply_cors_post_request(service, request, response)
    return True


def _add_cors(request: Any, response: Any) -> Any:
    with never_raise("adding the CORS headers to an error response"):
        if _cornice_cors(request, response):
            return response
    method = request.headers.get("Access-Control-Request-Method") or request.method
    methods = {"OPTIONS", "HEAD"}
    if _METHOD_RE.fullmatch(method):
        methods.add(method.upper())
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = ",".join(sorted(methods))
    response.headers["Access-Control-Allow-Headers"] = "session-id"
    response.headers["Access-Control-Max-Age"] = "86400"
    return response


def _log(request: Any, level: int, status: int, message: str, exc: BaseException | None) -> None:
    _LOG.log(
        level,
        "%s %s returned status code %s: %s",
        request.method,
        _redact(_safe_url(request)),
        status,
        _redact(message),
        extra={"referrer": _redact(str(request.referrer or ""))},
        exc_info=exc,
    )


def _answer(
    request: Any,
    status: int,
    message: str,
    stacktrace: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Any:
    from pyramid.response import Response

    request_id = _request_id(request)
    # An error body may be logged by the client or a proxy: no secret in it either.
    message = _redact(message)
    body: dict[str, Any]
    if _wants_problem(request):
        content_type = _PROBLEM
        body = {
            "type": "about:blank",
            "title": _reason(status),
            "status": status,
            "detail": message,
            "instance": _redact(_safe_path(request)),
            "request_id": request_id,
        }
    else:
        content_type = _JSON
        body = {"message": message, "status": status, "request_id": request_id}
    if stacktrace is not None:
        body["stacktrace"] = _redact(stacktrace)
    response = Response(orjson.dumps(body), status=status, content_type=content_type)
    for name, value in headers or ():
        response.headers.add(name, value)
    return _add_cors(request, _no_cache(response))


def _passthrough_view(exc: Any, request: Any) -> Any:
    """A raised success or redirection is answered as is, with CORS and no-cache headers."""
    return _add_cors(request, _no_cache(exc))


def _http_error_view(exc: Any, request: Any) -> Any:
    """A raised HTTP error (4xx, 5xx, the router's 404) keeps its status and headers."""
    if request.method == "OPTIONS":
        from pyramid.response import Response

        return _add_cors(request, _no_cache(Response(status=200)))
    status = int(exc.code)
    message = str(exc) or str(exc.title)
    level = (
        logging.DEBUG
        if status == HTTPStatus.UNAUTHORIZED
        else logging.ERROR
        if status == HTTPStatus.INTERNAL_SERVER_ERROR
        else logging.WARNING
    )
    _log(request, level, status, message, None)
    headers = [(n, v) for n, v in exc.headerlist if n.lower() not in _BODY_HEADERS]
    return _answer(request, status, message, headers=headers)


def _error(request: Any, exc: BaseException, status: int, public_message: str | None = None) -> Any:
    details = _show_details(request)
    message = str(exc) if details else public_message or _reason(status)
    level = logging.ERROR if status >= HTTPStatus.INTERNAL_SERVER_ERROR else logging.WARNING
    _log(request, level, status, str(exc), exc)
    stacktrace = "".join(traceback.format_exception(exc)) if details else None
    return _answer(request, status, message, stacktrace)


# SQLAlchemy errors that are the client's (recognised by name: SQLAlchemy is not imported for them).
_DB_CLIENT_ERRORS = frozenset({"sqlalchemy.exc.IntegrityError", "sqlalchemy.exc.DataError"})


def _class_names(exc: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}


def _is_error_status(status: int) -> bool:
    return HTTPStatus.BAD_REQUEST <= status <= _MAX_STATUS and _reason(status) != "Error"


def _botocore_status(exc: Any) -> int:
    response = getattr(exc, "response", None) or {}
    candidates = (
        response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
        response.get("Error", {}).get("Code"),
    )
    for candidate in candidates:
        if str(candidate).isdigit() and _is_error_status(int(candidate)):
            return int(candidate)
    return HTTPStatus.INTERNAL_SERVER_ERROR


def _other_error_view(exc: Exception, request: Any) -> Any:
    """Any other exception is a 500, except a few well-known ones from optional libraries."""
    names = _class_names(exc)
    if names & _DB_CLIENT_ERRORS:
        return _database_error_view(exc, request)
    if "botocore.exceptions.ClientError" in names:
        return _error(request, exc, _botocore_status(exc))
    if "beaker.exceptions.BeakerException" in names and str(exc) == "Invalid signature":
        return _error(request, exc, HTTPStatus.UNAUTHORIZED)
    return _error(request, exc, HTTPStatus.INTERNAL_SERVER_ERROR)


def _database_message(exc: Exception) -> str | None:
    """The database's primary message: without the statement, its parameters or the DETAIL line."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return None
    diag = getattr(orig, "diag", None)
    message = getattr(diag, "message_primary", None) if diag is not None else None
    if not isinstance(message, str) or not message:
        # Other drivers: their first line is the message, the DETAIL and the query come after it.
        message = str(orig).split("\n", 1)[0].partition("[SQL:")[0]
    message = message.strip()[:_MAX_DB_MESSAGE]
    return message or None


def _database_error_view(exc: Exception, request: Any) -> Any:
    """SQLAlchemy integrity and data errors are the client's: 400 with the database's message."""
    public = None
    with never_raise("reading the message of a database error"):
        public = _database_message(exc)
    return _error(request, exc, 400, public or _DB_MESSAGES.get(type(exc).__name__))


def _request_is_undecodable(request: Any) -> bool:
    try:
        request.path_info  # noqa: B018  # decoding is the test
        request.GET.items()
        request.POST.items()
    except UnicodeDecodeError:
        return True
    return False


def _decode_error_view(exc: UnicodeDecodeError, request: Any) -> Any:
    """A request that is not valid UTF-8 is the client's error (400); other decode errors are bugs."""
    from pyramid.exceptions import URLDecodeError

    if isinstance(exc, URLDecodeError) or _request_is_undecodable(request):
        _log(request, logging.WARNING, 400, _DECODE_MESSAGE, None)
        return _answer(request, 400, _DECODE_MESSAGE)
    return _other_error_view(exc, request)


def _disconnected_view(exc: Exception, request: Any) -> Any:
    """The client went away: nobody reads the answer, and it is not worth more than INFO."""
    request.environ[_DISCONNECTED] = True  # nor a WARNING of the server error tween
    _LOG.info("%s %s: the client disconnected (%s)", request.method, _redact(_safe_url(request)), exc)
    return _answer(request, 500, _reason(500))


def _log_server_error(request: Any, status: int, raised: BaseException | None = None) -> None:
    route = getattr(request, "matched_route", None)
    _LOG.warning(
        "%s %s returned status code %s (route: %s)%s",
        request.method,
        _redact(_safe_path(request)),
        status,
        route.name if route is not None else "-",
        f", {type(raised).__name__} raised" if raised is not None else "",
        extra={"status": status},
    )


def server_error_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """Log each response of status 500 or more, and each exception that gets through, at WARNING.

    .. versionadded:: 6.2
    """
    del registry

    def server_error_tween(request: Any) -> Any:
        try:
            response = handler(request)
        except Exception as error:
            # No error view answered it: the server will answer 500.
            try:
                _log_server_error(request, HTTPStatus.INTERNAL_SERVER_ERROR.value, error)
            except Exception:  # logged: the exception of the view is the one that matters
                swallow("logging a server error")
            raise
        try:
            status = response.status_code
            if status >= HTTPStatus.INTERNAL_SERVER_ERROR and _DISCONNECTED not in request.environ:
                _log_server_error(request, status)
        except Exception:  # logged: the response goes out anyway
            swallow("logging a server error response")
        return response

    return server_error_tween


def includeme(config: Any) -> None:
    """Log the 5xx responses, and install the JSON error views when enabled.

    The views are installed when ``C2C_ENABLE_EXCEPTION_HANDLING`` is true.
    """
    from pyramid.tweens import EXCVIEW, INGRESS

    # Over pyramid_tm (when included): it sees the answers to errors raised at commit.
    config.add_tween(
        "c2cwsgiutils.errors.server_error_tween_factory",
        under=("c2cwsgiutils.request_tracking.request_tracking_tween_factory", INGRESS),
        over=("pyramid_tm.tm_tween_factory", EXCVIEW),
    )
    if not _settings.get(config.registry, ErrorSettings).enabled:
        return
    from pyramid.httpexceptions import HTTPError, HTTPRedirection, HTTPSuccessful
    from webob.request import DisconnectionError

    _settings.get(config.registry, _settings.CoreSettings)
    config.add_exception_view(_passthrough_view, context=HTTPSuccessful)
    config.add_exception_view(_passthrough_view, context=HTTPRedirection)
    config.add_exception_view(_http_error_view, context=HTTPError)
    config.add_exception_view(_other_error_view, context=Exception)
    config.add_exception_view(_decode_error_view, context=UnicodeDecodeError)
    config.add_exception_view(_disconnected_view, context=ConnectionResetError)
    config.add_exception_view(_disconnected_view, context=DisconnectionError)
