"""gunicorn's access lines without secrets and with their fields, whatever the ``gunicorn.conf.py``.

Many services do not use :mod:`c2cwsgiutils.gunicorn_config`: their ``gunicorn.conf.py`` is the one
of the reference README (``accesslog = "-"``, ``logconfig_dict = get_logconfig_dict(paste)``), and
gunicorn's own logger writes the access lines. :func:`c2cwsgiutils.get_logconfig_dict` therefore
puts :class:`AccessLogFilter` on the ``gunicorn.access`` logger (and lets its records go to the
ini's root handlers, JSON with ``LOG_TYPE=json``, unless the ini configures that logger itself).

The filter works on what gunicorn documents: an access record's arguments are the access log
format's atoms (``h``, ``r``, ``U``, ``q``, ``{header}i``, ``{header}o``, ``{variable}e``...).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from c2cwsgiutils._redact import MASK, redact

__all__ = ["MASKED_ATOMS", "REDACTED_ATOMS", "AccessLogFilter"]

# Atoms that may carry a secret in a query string or a cookie.
REDACTED_ATOMS = (
    "r",
    "U",
    "q",
    "f",
    "{referer}i",
    "{cookie}i",
    "{raw_uri}e",
    "{request_uri}e",
    "{path_info}e",
    "{query_string}e",
    "{http_referer}e",
    "{http_cookie}e",
)
# Atoms that are a credential as a whole.
MASKED_ATOMS = ("{x-api-key}i", "{http_x_api_key}e", "{authorization}i", "{http_authorization}e")


def _status(value: Any) -> Any:
    text = str(value).split(None, 1)[0] if value is not None else ""
    return int(text) if text.isdigit() else value


class AccessLogFilter(logging.Filter):
    """Mask secrets in gunicorn's access records and add the structured fields of the request.

    The fields (record attributes, which the JSON handlers write): ``status``, ``method``,
    ``path``, ``query``, ``duration`` (seconds), ``client_addr`` and ``request_id`` (the
    response's request id header, else the request's).

    Args:
        request_id_header: a request id header to look for first (``C2C_REQUEST_ID_HEADER``).
    """

    def __init__(self, request_id_header: str = "") -> None:
        """Look for ``request_id_header`` (if any) and ``X-Request-ID``."""
        super().__init__()
        names = (request_id_header.strip(), "X-Request-ID")
        self._request_id_atoms = tuple(
            dict.fromkeys(f"{{{name.lower()}}}{kind}" for kind in ("o", "i") for name in names if name)
        )

    def filter(self, record: logging.LogRecord) -> bool:
        """Change ``record`` in place; never drop it."""
        atoms = record.args
        # A record of c2cwsgiutils.gunicorn_config.Logger already has its fields, its atoms masked.
        if not isinstance(atoms, MutableMapping) or "duration" in record.__dict__:
            return True
        try:
            self._clean(record, atoms)
        except Exception:
            # Never lose the line; but a line that may hold a secret is not written as is.
            record.msg, record.args = "<access line that could not be cleaned>", ()
        return True

    def _clean(self, record: logging.LogRecord, atoms: MutableMapping[str, Any]) -> None:
        for key in REDACTED_ATOMS:
            value = atoms.get(key)
            if isinstance(value, str) and value:
                atoms[key] = redact(value)
        for key in MASKED_ATOMS:
            if key in atoms:
                atoms[key] = MASK
        fields: dict[str, Any] = {
            "status": _status(atoms.get("s")),
            "method": atoms.get("m"),
            "path": atoms.get("U"),
            "client_addr": atoms.get("h"),
        }
        if atoms.get("q"):
            fields["query"] = atoms["q"]
        microseconds = atoms.get("D")
        if isinstance(microseconds, int):
            fields["duration"] = microseconds / 1_000_000
        for key in self._request_id_atoms:
            request_id = atoms.get(key)
            if request_id:
                fields["request_id"] = request_id
                break
        for name, value in fields.items():
            setattr(record, name, value)
