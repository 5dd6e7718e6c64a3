"""Per-request context shared with log handlers and outgoing HTTP calls (contextvars, not threadlocals)."""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["current_request", "current_trace"]

# The Pyramid request being handled in this context, set by the request tracking tween.
current_request: contextvars.ContextVar[Any | None] = contextvars.ContextVar(
    "c2cwsgiutils_request", default=None
)
# The W3C trace context (trace id, the request's own span id, flags) of the request in this context.
current_trace: contextvars.ContextVar[tuple[str, str, str] | None] = contextvars.ContextVar(
    "c2cwsgiutils_trace", default=None
)
