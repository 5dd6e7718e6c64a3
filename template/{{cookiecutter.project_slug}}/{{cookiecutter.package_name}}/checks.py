"""The service's own health checks (see ``main``): a callback of the request, raising on failure."""

from __future__ import annotations

import time
from typing import Any

_STARTED = time.monotonic()
MAX_UPTIME_SECONDS = 365 * 24 * 3600


def uptime(request: Any) -> dict[str, float]:
    """Report how long the process has been running; fail past a year (an example of a failure)."""
    del request
    seconds = time.monotonic() - _STARTED
    if seconds > MAX_UPTIME_SECONDS:
        msg = "The process has been running for more than a year: restart it"
        raise RuntimeError(msg)
    return {"uptime_seconds": round(seconds, 3)}
