"""Response header updates for the tweens: one pass over the header list instead of WebOb's several.

``response.headers[name] = value`` rebuilds the whole header list with a lower-cased copy of every
name, each time. The tweens of the request path set a few headers on every response, so they use
:func:`set_headers`, which scans the list once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["set_headers"]


def set_headers(response: Any, values: dict[str, str | Callable[[str | None], str]]) -> None:
    """Set headers of ``response``, replacing any header of the same name (case-insensitive).

    Args:
        response: a WebOb response.
        values: header name -> value, or a function given the current value (``None`` when
            absent) that returns the new one (to append to a header such as ``Server-Timing``).
    """
    wanted = {name.lower(): name for name in values}
    headerlist = response.headerlist
    for key, _ in headerlist:
        if key.lower() in wanted:
            break
    else:  # the usual case: none of them is there yet
        for name in wanted.values():
            value = values[name]
            headerlist.append((name, value if isinstance(value, str) else value(None)))
        return
    current: dict[str, str] = {}
    kept = []
    for key, value in headerlist:
        lower = key.lower()
        if lower in wanted:
            current[lower] = value if lower not in current else f"{current[lower]}, {value}"
        else:
            kept.append((key, value))
    headerlist[:] = kept
    for lower, name in wanted.items():
        value = values[name]
        headerlist.append((name, value if isinstance(value, str) else value(current.get(lower))))
