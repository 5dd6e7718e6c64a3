"""Helpers of the broadcasters."""

from __future__ import annotations

import os
import socket
from typing import TypeVar

__all__ = ["add_host_info"]

T = TypeVar("T")
_HOSTNAME = socket.gethostname()


def add_host_info(response: T) -> T:
    """Add ``hostname`` and ``pid`` to an answer that is a dict (other answers are returned as is)."""
    if isinstance(response, dict):
        response.setdefault("hostname", _HOSTNAME)
        response.setdefault("pid", os.getpid())
    return response
