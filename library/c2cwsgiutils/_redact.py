"""Redaction of the shared secret and API keys from text that is about to be logged.

Every log writer of the library (the JSON handlers, the gunicorn access log, the error views)
passes what it writes through :func:`redact`, so that ``?secret=...`` in a URL, a
``C2C_SECRET`` cookie or an ``X-API-Key`` header value never reaches a log line.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact"]

MASK = "***"


# The value ends at the next query-string, cookie, header-list, quoting or blank separator.
_VALUE = r"""[^&;,\s'"<>)}\]]+"""
_PATTERN = re.compile(
    # secret=..., client_secret=..., C2C_SECRET=... (cookie) and their URL-encoded form.
    rf"(?P<key>secret(?:=|%3D))(?P<value>{_VALUE})"
    # "secret": "...", 'secret': '...' (dict or JSON dumps).
    rf"""|(?P<qkey>secret['"]\s*:\s*['"])(?P<qvalue>[^'"]+)"""
    # X-API-Key: ..., x-api-key=..., HTTP_X_API_KEY: '...', "X-Api-Key": "...".
    rf"""|(?P<hkey>x[-_]api[-_]key['"]?\s*[:=]\s*['"]?)(?P<hvalue>{_VALUE})""",
    re.IGNORECASE,
)


def _mask(match: re.Match[str]) -> str:
    key = match.group("key") or match.group("qkey") or match.group("hkey")
    return f"{key}{MASK}"


def redact(text: str) -> str:
    """Return ``text`` with the values of secrets and API keys replaced by ``***``.

    Covers ``secret=<value>`` (any query string, ``client_secret``, the ``C2C_SECRET`` cookie,
    URL-encoded ``secret%3D<value>``), quoted ``"secret": "<value>"`` and ``X-API-Key`` header
    values in any common spelling. Text without any of these words is returned unchanged (the
    same object), at the cost of one search.

    Args:
        text: the text to clean, typically a log message or a URL.

    Returns:
        The text with every secret value masked.
    """
    # Cheap first pass: most log messages contain neither word, and lowering the text plus two
    # substring searches costs a few percent of a case-insensitive regular expression scan.
    lowered = text.lower()
    if "secret" not in lowered and "key" not in lowered:
        return text
    return _PATTERN.sub(_mask, text)
