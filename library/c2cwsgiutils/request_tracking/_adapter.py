""":class:`TrackingAdapter`: the request tracking of outgoing calls through requests' public API.

Mounted on a ``requests.Session`` (``session.mount("https://", TrackingAdapter())``), it adds the
request id header, the trace context and the default timeout to the session's calls, and reports
them to the observers (the ``requests_seconds`` metric), as the process-wide wrapper does for
every call. It is the route for applications that turn that wrapper off
(``C2C_TRACK_REQUESTS=false``); with the wrapper on, it only sends (the wrapper does the work
once).
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from c2cwsgiutils.request_tracking import _requests

__all__ = ["TrackingAdapter", "session"]


class TrackingAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that tracks its calls (request id, ``traceparent``, default timeout)."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Send the request as ``HTTPAdapter.send`` does, tracked."""
        parent = super().send
        if _requests.is_installed():
            return parent(request, *args, **kwargs)
        return _requests.send(lambda _adapter, *a, **k: parent(*a, **k), self, request, args, kwargs)


def session() -> requests.Session:
    """Return a ``requests.Session`` whose ``http://`` and ``https://`` calls are tracked."""
    result = requests.Session()
    result.mount("http://", TrackingAdapter())
    result.mount("https://", TrackingAdapter())
    return result
