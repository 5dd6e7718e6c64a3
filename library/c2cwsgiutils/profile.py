"""The profiler under the names the README uses: ``from c2cwsgiutils.profile import Profiler``.

:class:`Profiler` and :class:`Profile` are :class:`c2cwsgiutils.profiler.Profile`.

.. versionadded:: 6.0
"""

from __future__ import annotations

from c2cwsgiutils.profiler import Profile

__all__ = ["Profile", "Profiler"]

Profiler = Profile
"""Alias of :class:`c2cwsgiutils.profiler.Profile` (the name of the README)."""
