"""Debug views under ``{base}/debug/`` (enabled by ``C2C_DEBUG_VIEW_ENABLED``; needs ``objgraph``).

All are ``GET``, JSON, no-cache and secret-protected except ``time``. Unlike the reference:
``headers`` masks the cookies, ``Authorization``, ``Proxy-Authorization`` and ``X-API-Key``;
``sleep`` is bounded (60 s, more is a 400); memory analyses are bounded (60 s) and one at a time
per process (a concurrent request gets a 429); ``memory_diff`` refuses (400) a ``path`` that is
one of the library's own views (under ``C2C_BASE_PATH``, or a route the library added): it runs
its sub-request twice, so ``path=/c2c/debug/sleep`` would hold a thread twice the sleep cap;
``show_refs.dot`` ``analyze_id`` and ``min_size_kb`` work; every action writes an audit line.
Bad parameters are a JSON 400 (``{"status": 400, "message"}``).

.. versionadded:: 6.0
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import re
import sys
import threading
import time
import traceback
from typing import Any

from c2cwsgiutils import _admin, _audit, _extras, _settings, auth, broadcast
from c2cwsgiutils.broadcast import utils
from c2cwsgiutils.debug import _memory
from c2cwsgiutils.debug._memory import dump_memory_maps, get_size

__all__ = ["DebugSettings", "dump_memory_maps", "get_size", "includeme", "init_daemon"]

_LOG = logging.getLogger(__name__)
MAX_SLEEP = 60.0
_MASKED_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization", "x-api-key"})


@_settings.frozen_dataclass
class DebugSettings:
    """Settings of the debug views."""

    enabled: bool = _settings.knob(
        False,
        env="C2C_DEBUG_VIEW_ENABLED",
        ini="c2c.debug_view_enabled",
        convert=_settings.as_bool,
        doc="Enable the debug views (stacks, memory, headers, ...).",
    )


def _dump_stacks() -> dict[str, Any]:
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    threads = []
    for ident, frame in sys._current_frames().items():  # noqa: SLF001  # the documented way to get all stacks
        frames = [
            {"file": f.filename, "line": f.lineno, "function": f.name, "code": f.line}
            for f in traceback.extract_stack(frame)
        ]
        threads.append({"name": names.get(ident, "?"), "id": ident, "frames": frames})
    return utils.add_host_info({"threads": threads})


def _flag(request: Any, name: str) -> bool:
    return bool(_admin.bool_param(request, name, flag=True))


def _int(request: Any, name: str, default: int, low: int = 0, high: int = 10_000) -> int:
    try:
        value = int(request.params.get(name, default))
    except ValueError:
        raise _admin.bad_request(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise _admin.bad_request(f"{name} must be between {low} and {high}")
    return value


def _stacks_view(request: Any) -> list[dict[str, Any]]:
    auth.auth_view(request)
    _audit.log(request, "dump the stacks", "done")
    grouped: dict[str, dict[str, Any]] = {}
    for answer in broadcast.broadcast("c2c_dump_stacks", expect_answers=True) or []:
        if not isinstance(answer, dict) or "threads" not in answer:
            continue
        for thread in answer["threads"]:
            key = repr(thread["frames"])
            entry = grouped.setdefault(key, {"frames": thread["frames"], "threads": []})
            entry["threads"].append(
                f"{answer.get('hostname')}/{answer.get('pid')}/{thread['name']}({thread['id']})"
            )
    return list(grouped.values())


def _memory_view(request: Any) -> list[Any]:
    auth.auth_view(request)
    params = {
        "limit": _int(request, "limit", 30, 1, 1000),
        "analyze_type": request.params.get("analyze_type") or None,
        "python_internals_map": _flag(request, "python_internals_map"),
    }
    _audit.log(request, f"memory analysis {params}", "started")
    return broadcast.broadcast("c2c_dump_memory", params=params, expect_answers=True, timeout=70) or []


def _library_view(request: Any, path: str) -> str | None:
    """The library's route (or base path) that ``path`` would reach, None if it is the application's."""
    from pyramid.interfaces import IRoutesMapper

    base = _settings.get(request.registry, _settings.CoreSettings).base_path.rstrip("/")
    # As a server would see it: "//c2c/./debug/../debug/sleep" is "/c2c/debug/sleep".
    normal = posixpath.normpath(re.sub(r"/+", "/", "/" + path))
    if base and (normal == base or normal.startswith(base + "/")):
        return base
    # An empty base path puts the library's views among the application's: ask the routes.
    mapper = request.registry.queryUtility(IRoutesMapper)
    for route in mapper.get_routes() if mapper is not None else ():
        if route.name.startswith("c2c_") and (
            route.match(path) is not None or route.match(normal) is not None
        ):
            return str(route.pattern)
    return None


def _memory_diff_view(request: Any) -> list[list[Any]]:
    import gc

    import objgraph
    from pyramid.httpexceptions import HTTPTooManyRequests

    auth.auth_view(request)
    path = request.params.get("path") or "/" + "/".join(
        request.matchdict.get("path", ()) if request.matchdict else ()
    )
    if not path or path == "/":
        raise _admin.bad_request("path is required")
    sub_path, _, query = path.partition("?")
    library = _library_view(request, sub_path)
    if library is not None:
        _audit.log(request, f"memory diff of {path}", "refused: a view of the library")
        raise _admin.bad_request(
            f"path must be a view of the application, not one of the library's ({library}): "
            "memory_diff requests it twice"
        )
    limit = _int(request, "limit", 30, 1, 1000)

    def sub_request() -> None:
        sub = request.copy()
        sub.path_info, sub.query_string = sub_path, query
        request.invoke_subrequest(sub, use_tweens=True)

    if not _memory.analysis_lock.acquire(blocking=False):
        raise HTTPTooManyRequests("Another memory analysis is running")
    try:
        if not _flag(request, "no_warmup"):
            sub_request()
        gc.collect()
        objgraph.growth(limit=None, peak_stats={}, shortnames=False)
        peak: dict[str, int] = {}
        objgraph.growth(limit=None, peak_stats=peak, shortnames=False)
        sub_request()
        gc.collect()
        growth = objgraph.growth(limit=limit, peak_stats=peak, shortnames=False)
    finally:
        _memory.analysis_lock.release()
    _audit.log(request, f"memory diff of {path}", "done")
    return [[name, count, increase] for name, count, increase in growth]


def _memory_maps_view(request: Any) -> list[dict[str, Any]]:
    auth.auth_view(request)
    _audit.log(request, "dump the memory maps", "done")
    return dump_memory_maps()


def _show_refs_view(request: Any) -> Any:
    from pyramid.httpexceptions import HTTPTooManyRequests

    auth.auth_view(request)
    analyze_id = request.params.get("analyze_id")
    min_size = request.params.get("min_size_kb")
    try:
        kwargs = {
            "analyze_type": request.params.get("analyze_type"),
            "analyze_id": int(analyze_id) if analyze_id else None,
            "min_size_kb": float(min_size) if min_size else None,
        }
    except ValueError:
        raise _admin.bad_request("analyze_id and min_size_kb must be numbers") from None
    if not _memory.analysis_lock.acquire(blocking=False):
        raise HTTPTooManyRequests("Another memory analysis is running")
    try:
        dot = _memory.show_refs(
            max_depth=_int(request, "max_depth", 3, 1, 20),
            too_many=_int(request, "too_many", 10, 1, 1000),
            extra_info=not _flag(request, "no_extra_info"),
            backrefs=_flag(request, "backrefs"),
            **kwargs,
        )
    finally:
        _memory.analysis_lock.release()
    _audit.log(request, "show_refs", "done")
    request.response.content_type = "text/vnd.graphviz"
    request.response.text = dot
    return request.response


def _sleep_view(request: Any) -> Any:
    from pyramid.httpexceptions import HTTPNoContent

    auth.auth_view(request)
    try:
        seconds = float(request.params.get("time", "1"))
    except ValueError:
        raise _admin.bad_request("time must be a number of seconds") from None
    if not 0 <= seconds <= MAX_SLEEP:
        raise _admin.bad_request(f"time must be between 0 and {MAX_SLEEP:g} seconds")
    _audit.log(request, f"sleep {seconds:g} s", "started")
    time.sleep(seconds)
    return HTTPNoContent()


def _headers_view(request: Any) -> dict[str, Any]:
    from pyramid.httpexceptions import exception_response

    auth.auth_view(request)
    result = {
        "headers": {
            name: ("***" if name.lower() in _MASKED_HEADERS else value)
            for name, value in request.headers.items()
        },
        "client_info": {
            name: getattr(request, name, None)
            for name in (
                "client_addr",
                "host",
                "host_port",
                "http_version",
                "path",
                "path_info",
                "remote_addr",
                "remote_host",
                "scheme",
                "server_name",
                "server_port",
            )
        },
    }
    _audit.log(request, "show the request headers", "done")
    if "status" in request.params:
        raise exception_response(_int(request, "status", 200, 200, 599), detail=result)
    return result


def _error_view(request: Any) -> Any:
    from pyramid.httpexceptions import exception_response

    auth.auth_view(request)
    status = _int(request, "status", 500, 400, 599)
    _audit.log(request, f"raise an HTTP error {status}", "done")
    raise exception_response(status, detail="Test")


def _time_view(request: Any) -> dict[str, Any]:
    del request
    now = time.time()
    return {
        "local_time": str(dt.datetime.fromtimestamp(now).astimezone()),
        "gmt_time": str(dt.datetime.fromtimestamp(now, tz=dt.UTC)),
        "epoch": now,
        "timezone": dt.datetime.now().astimezone().tzname(),
    }


def init_daemon(config: Any = None) -> None:
    """Subscribe this process to the memory and stacks broadcasts (for processes without the views).

    Args:
        config: the Pyramid configurator, to set up the broadcast with its settings.
    """
    _extras.require("objgraph", "debug", "c2cwsgiutils.debug")
    if config is not None:
        config.include("c2cwsgiutils.broadcast")
    broadcast.subscribe("c2c_dump_memory", _memory.dump_memory)
    broadcast.subscribe("c2c_dump_stacks", _dump_stacks)


_VIEWS = (
    ("c2c_debug_stacks", "/debug/stacks", _stacks_view),
    ("c2c_debug_memory", "/debug/memory", _memory_view),
    ("c2c_debug_memory_diff", "/debug/memory_diff", _memory_diff_view),
    ("c2c_debug_memory_diff_deprecated", "/debug/memory_diff/*path", _memory_diff_view),
    ("c2c_debug_memory_maps", "/debug/memory_maps", _memory_maps_view),
    ("c2c_debug_show_refs", "/debug/show_refs.dot", _show_refs_view),
    ("c2c_debug_sleep", "/debug/sleep", _sleep_view),
    ("c2c_debug_headers", "/debug/headers", _headers_view),
    ("c2c_debug_error", "/debug/error", _error_view),
    ("c2c_debug_time", "/debug/time", _time_view),
)


def includeme(config: Any) -> None:
    """Register the debug views when ``C2C_DEBUG_VIEW_ENABLED`` is true."""
    if not _settings.get(config.registry, DebugSettings).enabled:
        return
    init_daemon(config)

    for name, path, view in _VIEWS:
        _admin.add_admin_view(config, name, path, view)
