"""Memory analyses of the debug views (objgraph), bounded in time and never concurrent."""

from __future__ import annotations

import gc
import inspect
import io
import linecache
import logging
import sys
import threading
import time
import types
from collections import Counter
from typing import Any

from c2cwsgiutils.broadcast import utils

_LOG = logging.getLogger("c2cwsgiutils.debug")
ANALYSIS_TIMEOUT = 60.0
_REPR_MAX = 256
#: One heavy analysis at a time in a process.
analysis_lock = threading.Lock()
_SKIPPED = (type, types.ModuleType, types.FunctionType)


def get_size(obj: Any) -> int:
    """Return the deep size of ``obj`` in bytes (the objects it references, once each).

    Types, modules and functions are not followed (they are shared, not owned).
    """
    seen: set[int] = set()
    size = 0
    pending = [obj]
    while pending:
        batch = []
        for item in pending:
            if isinstance(item, _SKIPPED) or id(item) in seen:
                continue
            seen.add(id(item))
            size += sys.getsizeof(item)
            batch.append(item)
        pending = gc.get_referents(*batch) if batch else []
    return size


def dump_memory_maps(pid: str | int = "self") -> list[dict[str, Any]]:
    """Aggregate ``/proc/<pid>/smaps`` per mapping name, sorted by PSS (PSS 0 omitted).

    Returns:
        ``[{"name", "size_kb", "rss_kb", "pss_kb"}]``.
    """
    sizes: dict[str, dict[str, int]] = {}
    name = "[anonymous]"
    with open(f"/proc/{pid}/smaps", encoding="utf-8") as smaps:
        for line in smaps:
            fields = line.split()
            if not fields:
                continue
            if not fields[0].endswith(":"):
                name = fields[5] if len(fields) > 5 else "[anonymous]"  # noqa: PLR2004  # pathname column
                continue
            key = {"Size:": "size_kb", "Rss:": "rss_kb", "Pss:": "pss_kb"}.get(fields[0])
            if key is not None:
                entry = sizes.setdefault(name, {"size_kb": 0, "rss_kb": 0, "pss_kb": 0})
                entry[key] += int(fields[1])
    result = [{"name": n, **values} for n, values in sizes.items() if values["pss_kb"] > 0]
    return sorted(result, key=lambda e: -e["pss_kb"])


def _short_repr(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception as error:
        text = f"<repr failed: {error}>"
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def _internals_filter() -> Any:
    namespaces = {id(vars(module)) for module in list(sys.modules.values()) if module is not None}
    frame: types.FrameType | None = inspect.currentframe()  # frames' namespaces are filtered
    while frame is not None:
        namespaces.add(id(frame.f_locals))
        frame = frame.f_back
    return lambda obj: id(obj) not in namespaces


def _analyze(analyze_type: str, limit: int, objects: list[Any], deadline: float) -> dict[str, Any]:
    import objgraph

    if analyze_type == "builtins.function":
        modules = Counter(
            getattr(f, "__module__", None) or "?" for f in objgraph.by_type(analyze_type, objects)
        )
        return {"modules": [{"module": m, "nb_func": n} for m, n in modules.most_common(limit)]}
    if analyze_type == "linecache":
        entries = sorted(
            ((get_size(lines), path) for path, lines in list(linecache.cache.items())), reverse=True
        )[:limit]
        return {"biggest_objects": [{"size_kb": size / 1024, "repr": path} for size, path in entries]}
    biggest: list[tuple[int, Any]] = []
    timed_out = False
    for obj in objgraph.by_type(analyze_type, objects):
        if time.monotonic() > deadline:
            timed_out = True
            break
        biggest.append((get_size(obj), obj))
        if len(biggest) > limit * 4:
            biggest = sorted(biggest, key=lambda e: -e[0])[:limit]
    biggest = sorted(biggest, key=lambda e: -e[0])[:limit]
    result: dict[str, Any] = {
        "biggest_objects": [{"size_kb": size / 1024, "repr": _short_repr(obj)} for size, obj in biggest]
    }
    if timed_out:
        result["timeout"] = True
    return result


def dump_memory(limit: int = 30, analyze_type: str | None = None, python_internals_map: bool = False) -> Any:
    """Broadcast receiver: the memory report of this process (one analysis at a time)."""
    import objgraph

    if not analysis_lock.acquire(blocking=False):
        return utils.add_host_info({"status": 429, "message": "Another memory analysis is running"})
    try:
        deadline = time.monotonic() + ANALYSIS_TIMEOUT
        nb_collected = [gc.collect(generation) for generation in range(3)]
        report: dict[str, Any] = {
            "nb_collected": nb_collected,
            "most_common_types": objgraph.most_common_types(limit=limit, shortnames=False),
            "leaking_objects": Counter(
                type(o).__module__ + "." + type(o).__qualname__ for o in objgraph.get_leaking_objects()
            ).most_common(limit),
        }
        if python_internals_map and not analyze_type:
            analyze_type = "builtins.dict"
        if analyze_type:
            objects = gc.get_objects()
            if python_internals_map:
                keep = _internals_filter()
                objects = [o for o in objects if keep(o)]
            report[analyze_type] = _analyze(analyze_type, limit, objects, deadline)
        return utils.add_host_info(report)
    finally:
        analysis_lock.release()


def show_refs(
    analyze_type: str | None,
    analyze_id: int | None,
    max_depth: int,
    too_many: int,
    min_size_kb: float | None,
    extra_info: bool,
    backrefs: bool,
) -> str:
    """Return the Graphviz source of the references (or back-references) of the chosen objects."""
    import objgraph

    if analyze_id is not None:
        objects = [o for o in gc.get_objects() if id(o) == analyze_id]
    else:
        objects = objgraph.by_type(analyze_type or "builtins.dict")
    if min_size_kb is not None:
        objects = [o for o in objects if get_size(o) >= min_size_kb * 1024]
    output = io.StringIO()
    kwargs: dict[str, Any] = {"max_depth": max_depth, "too_many": too_many, "output": output}
    if extra_info:
        kwargs["extra_info"] = lambda obj: f"{get_size(obj) / 1024:.1f} kB"
    (objgraph.show_backrefs if backrefs else objgraph.show_refs)(objects[:too_many], **kwargs)
    return output.getvalue()
