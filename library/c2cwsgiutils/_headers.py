"""Response header updates for the tweens: one pass over the header list instead of WebOb's several.

``response.headers[name] = value`` rebuilds the whole header list with a lower-cased copy of every
name, each time. The tweens of the request path set a few headers on every response, so each makes
a :class:`HeaderSetter` for its names once, which then scans the list once for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["HeaderSetter"]


class HeaderSetter:
    """Set the same response headers on many responses.

    It is given the names once, then the ``(name, value)`` pairs of each response (a tuple of
    pairs: added as they are in the usual case, where the response has none of them). The
    headers named in ``append`` keep a value the response already has: the new value is
    appended to it after a comma (``Server-Timing``); the others replace any header of the same
    name (case-insensitive).
    """

    __slots__ = ("_appended", "_lowered")

    def __init__(self, names: Sequence[str], *, append: Iterable[str] = ()) -> None:
        """Set the headers ``names``, appending to those in ``append``."""
        self._lowered = frozenset(name.lower() for name in names)
        self._appended = frozenset(name.lower() for name in append)

    def __call__(self, response: Any, headers: tuple[tuple[str, str], ...]) -> None:
        """Set the headers of ``response``: ``(name, value)`` pairs of the names, in their order."""
        headerlist = response.headerlist
        lowered = self._lowered
        for key, _ in headerlist:
            if key.lower() in lowered:
                self._replace(headerlist, headers)
                return
        headerlist.extend(headers)  # the usual case: none of them is there yet

    def _replace(self, headerlist: list[tuple[str, str]], headers: tuple[tuple[str, str], ...]) -> None:
        lowered = self._lowered
        previous: dict[str, str] = {}
        kept = []
        for key, value in headerlist:
            lower = key.lower()
            if lower in lowered:
                previous[lower] = value if lower not in previous else f"{previous[lower]}, {value}"
            else:
                kept.append((key, value))
        headerlist[:] = kept
        for name, value in headers:
            lower = name.lower()
            if lower in self._appended and lower in previous:
                headerlist.append((name, f"{previous[lower]}, {value}"))
            else:
                headerlist.append((name, value))
