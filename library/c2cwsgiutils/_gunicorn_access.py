r"""gunicorn's access lines without secrets and with their fields, whatever the ``gunicorn.conf.py``.

Many services do not use :mod:`c2cwsgiutils.gunicorn_config`: their ``gunicorn.conf.py`` is the one
of the reference README (``accesslog = "-"``, ``logconfig_dict = get_logconfig_dict(paste)``), and
gunicorn's own logger writes the access lines. :func:`c2cwsgiutils.get_logconfig_dict` therefore
puts :class:`AccessLogFilter` on the ``gunicorn.access`` logger (and lets its records go to the
ini's root handlers, JSON with ``LOG_TYPE=json``, unless the ini configures that logger itself);
:class:`c2cwsgiutils.gunicorn_config.Logger` adds it when the logging configuration does not.

The filter works on what gunicorn's ``Logger.access`` logs: the access log format as the message
and, as its argument, the mapping of the format's atoms (``h``, ``r``, ``U``, ``q``,
``{header}i``, ``{header}o``, ``{variable}e``...) wrapped in ``atoms_wrapper_class``, whose text
values have their double quotes escaped (``"`` is ``\"``) so that a quoted atom stays quoted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, MutableMapping
from typing import Any

from c2cwsgiutils._redact import MASK, add_secret, may_hold_secret, redact, redact_query

__all__ = ["MASKED_ATOMS", "REDACTED_ATOMS", "AccessLogFilter"]

# Atoms that are a query string alone (no "?" before it).
_QUERY_ATOMS = frozenset({"q", "{query_string}e"})
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


def _unescaped(value: Any) -> Any:
    return value.replace('\\"', '"') if isinstance(value, str) else value


def _redact_escaped(value: str, clean: Callable[[str], str] = redact) -> str:
    r"""Redact an atom whose double quotes are escaped, as if it had been redacted before escaping.

    A secret value may hold or end at a quote: redacting the escaped text would take the ``\`` of
    ``\"`` as part of the value and leave the quote unescaped. Escaping puts a ``\`` before each
    ``"`` and nowhere else, so replacing each ``\"`` by ``"`` gives back the original text exactly.
    """
    plain = _unescaped(value)
    redacted = clean(plain)
    if redacted == plain:
        return value
    return redacted.replace('"', '\\"')


def _mask_secrets(atoms: MutableMapping[str, Any]) -> None:
    texts = [value for key in REDACTED_ATOMS if isinstance(value := atoms.get(key), str) and value]
    # One search for the words of a secret in all of them; redacted one by one if found.
    if texts and may_hold_secret("\0".join(texts)):
        for key in REDACTED_ATOMS:
            value = atoms.get(key)
            if isinstance(value, str) and value:
                atoms[key] = _redact_escaped(value, redact_query if key in _QUERY_ATOMS else redact)
    for key in MASKED_ATOMS:
        if key in atoms:
            atoms[key] = MASK


class AccessLogFilter(logging.Filter):
    """Mask secrets in gunicorn's access records and add the structured fields of the request.

    The values of secret parameters are masked whole, whatever the spelling of their name
    (``?%73ecret=`` is the ``secret`` parameter for WebOb), and the configured secret is masked
    wherever it appears, raw or percent-encoded (see :mod:`c2cwsgiutils._redact`).

    The fields (record attributes, which the JSON handlers write): ``status``, ``method``,
    ``path``, ``query``, ``duration`` (seconds), ``client_addr`` and ``request_id`` (the
    response's request id header, else the request's).

    Args:
        request_id_header: a request id header to look for first (``C2C_REQUEST_ID_HEADER``).
        secret: the secret to mask wherever it appears; default: ``C2C_SECRET`` of the
            environment (the ini's ``c2c.secret`` is added when the application is loaded).
    """

    def __init__(self, request_id_header: str = "", secret: str | None = None) -> None:
        """Look for ``request_id_header`` (if any) and ``X-Request-ID``; mask ``secret``."""
        super().__init__()
        # Built when gunicorn configures its logging, before any request: the environment is the
        # one the workers get.
        add_secret(os.environ.get("C2C_SECRET", "") if secret is None else secret)
        names = (request_id_header.strip(), "X-Request-ID")
        self._request_id_atoms = tuple(
            dict.fromkeys(f"{{{name.lower()}}}{kind}" for kind in ("o", "i") for name in names if name)
        )

    def filter(self, record: logging.LogRecord) -> bool:
        """Change ``record`` in place; never drop it."""
        atoms = record.args
        # "duration": the record went through an AccessLogFilter already (logging.config.dictConfig
        # adds the filters of a logger again each time it runs, gunicorn runs it on each reload).
        if not isinstance(atoms, MutableMapping) or "duration" in record.__dict__:
            return True
        try:
            self._clean(record, atoms)
        except Exception:
            # Never lose the line; but a line that may hold a secret is not written as is.
            record.msg, record.args = "<access line that could not be cleaned>", ()
        return True

    def _clean(self, record: logging.LogRecord, atoms: MutableMapping[str, Any]) -> None:
        _mask_secrets(atoms)
        # The fields are values, not parts of a line: without the escaping of the atoms.
        fields: dict[str, Any] = {
            "status": _status(atoms.get("s")),
            "method": _unescaped(atoms.get("m")),
            "path": _unescaped(atoms.get("U")),
            "client_addr": _unescaped(atoms.get("h")),
        }
        if atoms.get("q"):
            fields["query"] = _unescaped(atoms["q"])
        microseconds = atoms.get("D")
        if isinstance(microseconds, int):
            fields["duration"] = microseconds / 1_000_000
        for key in self._request_id_atoms:
            request_id = atoms.get(key)
            if request_id:
                fields["request_id"] = _unescaped(request_id)
                break
        for name, value in fields.items():
            setattr(record, name, value)
