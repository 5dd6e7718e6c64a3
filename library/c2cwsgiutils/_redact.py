"""Redaction of the shared secret and API keys from text that is about to be logged.

Every log writer of the library (the JSON handlers, the gunicorn access log, the error views)
passes what it writes through :func:`redact`, so that ``?secret=...`` in a URL, a
``C2C_SECRET`` cookie or an ``X-API-Key`` header value never reaches a log line.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "may_hold_secret", "redact"]

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
    values in any common spelling. Text without ``secret``, ``-key`` or ``_key`` (in any case) is
    returned unchanged (the same object), at the cost of a few substring searches.

    Args:
        text: the text to clean, typically a log message or a URL.

    Returns:
        The text with every secret value masked.
    """
    # Cheap first pass: most log messages contain none of the words, and lowering the text plus
    # two substring searches costs a few percent of a case-insensitive regular expression scan.
    # Every match contains "ecret" or "-key"/"_key" once lowered: re.IGNORECASE matches no other
    # character than E, C, R, T, K (or the Kelvin sign, lowered to k) and Y as those letters
    # (a test checks it), and lowering keeps a run of such characters together. The "s" of
    # "secret" and the "i" of "api" are left out: re.IGNORECASE also matches the long s (U+017F),
    # the dotless i (U+0131) and the dotted capital I (U+0130) there.
    lowered = text.lower()
    if "ecret" not in lowered and "-key" not in lowered and "_key" not in lowered:
        return text
    return _PATTERN.sub(_mask, text)


def may_hold_secret(text: str) -> bool:
    r"""Return False when :func:`redact` returns ``text`` itself; True when it may change it.

    A cheaper and broader first pass than ``redact``'s: ``ecret`` or ``key`` once lowered (every
    text with ``ecret``, ``-key`` or ``_key`` has one of them; ``KeyError`` gives a needless True).
    It also holds for several texts at once: the words have no NUL character and lowering keeps
    each character's own lowercase (the Greek final sigma aside), so for texts joined by ``"\0"``
    the result is False only when it is False for every one of them. A writer with several texts
    checks them in one pass and calls ``redact`` on each only when this is True.

    Args:
        text: a text, or several texts joined by ``"\0"``.

    Returns:
        Whether ``redact`` may change ``text`` (or one of the joined texts).
    """
    lowered = text.lower()
    return "ecret" in lowered or "key" in lowered
