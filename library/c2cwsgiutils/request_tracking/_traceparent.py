"""W3C Trace Context ``traceparent`` header: parsing, new identifiers and formatting.

A trace is the tuple ``(trace_id, span_id, flags)`` of lower-case hexadecimal strings (32, 16
and 2 characters), the shape of :data:`c2cwsgiutils._context.current_trace`.
"""

from __future__ import annotations

import random
import re

__all__ = [
    "Trace",
    "child",
    "for_request",
    "format_header",
    "new_request_id",
    "new_span_id",
    "new_trace_id",
    "parse",
]

Trace = tuple[str, str, str]

# version "-" trace-id "-" parent-id "-" trace-flags, then (future versions only) "-" more fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_SAMPLED = 0x01
_getrandbits = random.getrandbits
# Version 4 (bits 76-79 = 0100) and RFC 4122 variant (bits 62-63 = 10) of a random UUID.
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID_SET = (0x4 << 76) | (0x2 << 62)


def parse(header: str | None) -> Trace | None:
    """Parse a ``traceparent`` header.

    Args:
        header: the header value, or ``None`` when absent.

    Returns:
        ``(trace_id, parent_id, flags)`` (flags reduced to the ``sampled`` bit, the only one
        version 00 defines), or ``None`` when absent or invalid: unknown format, version
        ``ff``, fields after the flags in version 00, all-zero trace or parent id, upper case.
    """
    if not header:
        return None
    match = _TRACEPARENT.fullmatch(header.strip(" \t"))
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, "01" if int(flags, 16) & _SAMPLED else "00"


def _random_hex(size: int) -> str:
    # Trace context identifiers must be random, not secret: the process's Mersenne Twister (reseeded
    # in each forked worker) costs a tenth of an os.urandom system call, paid on every request.
    # bytes.hex() formats three times faster than an integer's format(). All-zero ids are invalid.
    while True:
        value = _getrandbits(size * 8)
        if value:
            return value.to_bytes(size, "big").hex()


def new_request_id() -> str:
    """Return a random version 4 UUID, as text (the default request id)."""
    text = (_getrandbits(128) & _UUID_CLEAR | _UUID_SET).to_bytes(16, "big").hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_trace_id() -> str:
    """Return a random trace id (32 hexadecimal characters, never all zeros)."""
    return _random_hex(16)


def new_span_id() -> str:
    """Return a random span id (16 hexadecimal characters, never all zeros)."""
    return _random_hex(8)


def for_request(header: str | None) -> Trace:
    """Return the trace of a request: the incoming trace id if valid, else a new one.

    The span id is always new: it identifies the handling of this request.
    """
    parent = parse(header)
    if parent is not None:
        return parent[0], new_span_id(), parent[2]
    while True:  # a new trace: both ids from one draw
        text = _getrandbits(192).to_bytes(24, "big").hex()
        trace_id = text[:32]
        span_id = text[32:]
        if trace_id != _ZERO_TRACE and span_id != _ZERO_SPAN:
            return trace_id, span_id, "00"


def child(trace: Trace) -> Trace:
    """Return the trace of an outgoing call: same trace id and flags, a new span id."""
    return trace[0], new_span_id(), trace[2]


def format_header(trace: Trace) -> str:
    """Format ``trace`` as a version 00 ``traceparent`` header value."""
    return f"00-{trace[0]}-{trace[1]}-{trace[2]}"
