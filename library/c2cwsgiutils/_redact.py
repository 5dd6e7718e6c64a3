"""Redaction of the shared secret and API keys from text that is about to be logged.

Every log writer of the library (the JSON handlers, the gunicorn access log, the error views)
passes what it writes through :func:`redact` (a query string alone through :func:`redact_query`),
so that ``?secret=...`` in a URL, a ``C2C_SECRET`` cookie or an ``X-API-Key`` header value never
reaches a log line. Three passes, each one only when a cheap search says it may change the text:

1. the configured secrets (:func:`add_secret`: ``C2C_SECRET`` and the GitHub keys) are masked
   wherever they appear, raw or percent-encoded in any spelling (``quote``, ``quote_plus``,
   lowercase hexadecimal, partly encoded), so a secret with a separator (``,`` ``)`` ``;``...) or
   under an unexpected parameter name is masked whole;
2. in each query string (after a ``?``), the value of every parameter whose name, once
   percent-decoded, contains ``secret`` (any case) or is an ``x-api-key`` is masked up to the
   next ``&`` or ``;`` (the separators WebOb splits on), whatever it contains: WebOb decodes
   parameter names, so ``?%73ecret=...`` is a secret too;
3. ``secret=<value>`` (also with percent-encoded letters or ``=``), ``"secret": "<value>"`` and
   ``X-API-Key: <value>`` anywhere in the text, the value ending at the next separator.

This module also holds the process's set of configured secrets: process-global because the
gunicorn access lines and the JSON log lines are written far from any Pyramid registry.
"""

from __future__ import annotations

import re
import threading
import urllib.parse

from c2cwsgiutils import _process_state

__all__ = [
    "MASK",
    "MIN_MASKED_LENGTH",
    "add_secret",
    "forget_secrets",
    "may_hold_secret",
    "redact",
    "redact_query",
]

MASK = "***"
# A shorter configured secret is masked only after a secret parameter name (passes 2 and 3):
# masking every occurrence of a short value would garble ordinary words in every log line.
MIN_MASKED_LENGTH = 8
# The most recent configured secrets kept (a process usually has one or two).
_MAX_SECRETS = 16


def _letter(letter: str) -> str:
    """A letter of ``secret``, or its percent-encoding in either case (``s``: ``%73``/``%53``)."""
    lower, upper = ord(letter.lower()), ord(letter.upper())
    return f"(?:{letter}|%[{lower >> 4}{upper >> 4}]{lower & 15:x})"


_SECRET_WORD = "".join(_letter(letter) for letter in "secret")
# The value ends at the next query-string, cookie, header-list, quoting or blank separator.
_VALUE = r"""[^&;,\s'"<>)}\]]+"""
_PATTERN = re.compile(
    # secret=..., client_secret=..., C2C_SECRET=... (cookie), secr%65t=... and secret%3D...
    rf"(?P<key>{_SECRET_WORD}(?:=|%3D))(?P<value>{_VALUE})"
    # "secret": "...", 'secret': '...' (dict or JSON dumps).
    rf"""|(?P<qkey>secret['"]\s*:\s*['"])(?P<qvalue>[^'"]+)"""
    # X-API-Key: ..., x-api-key=..., HTTP_X_API_KEY: '...', "X-Api-Key": "...".
    rf"""|(?P<hkey>x[-_]api[-_]key['"]?\s*[:=]\s*['"]?)(?P<hvalue>{_VALUE})""",
    re.IGNORECASE,
)
# A query string in a text: from a "?" to the next blank or fragment. Quotes are part of it: a
# value may hold them (gunicorn passes them raw), and cutting there would show the rest.
_QUERY_IN_TEXT = re.compile(r"\?([^\s#]+)")
_PAIR_SEPARATORS = re.compile(r"([&;])")
_SECRET_NAME = re.compile(r"secret|x[-_]api[-_]key", re.IGNORECASE)
# In lowered text: the percent-encoding of C, E, K (%[46][35b]), R, T, Y (%[57][249]), "-", "_"
# and the Kelvin sign.
_ENCODED_LETTER = re.compile(r"%(?:[46][35b]|[57][249]|2d|5f|e2%84%aa)")


class _Known:
    """The configured secrets: their raw values and one pattern for every spelling of them."""

    __slots__ = ("pattern", "plus", "values")

    def __init__(self, values: tuple[str, ...]) -> None:
        self.values = values
        # A space may be written "+" (quote_plus): then a text with "+" may hold a spelling.
        self.plus = any(" " in value for value in values)
        self.pattern = (
            re.compile("|".join(_spellings(value) for value in sorted(values, key=len, reverse=True)))
            if values
            else None
        )

    def may_appear(self, text: str) -> bool:
        # Every spelling is the raw value, or has a percent-encoded character, or a "+" for a space.
        return bool(self.values) and (
            "%" in text or any(value in text for value in self.values) or (self.plus and "+" in text)
        )


def _spellings(value: str) -> str:
    """A pattern matching ``value`` with each character raw or percent-encoded (any hex case)."""
    parts = []
    for character in value:
        encoded = "".join(
            f"%[{f'{byte >> 4:x}{byte >> 4:X}'}][{f'{byte & 15:x}{byte & 15:X}'}]"
            for byte in character.encode("utf-8", "surrogatepass")
        )
        plus = "|\\+" if character == " " else ""
        parts.append(f"(?:{re.escape(character)}|{encoded}{plus})")
    return "".join(parts)


_known = _Known(())
_known_lock = threading.Lock()


def add_secret(value: str) -> None:
    """Mask ``value`` in every text redacted from now on in this process, in any spelling.

    Called with the configured secrets when an application resolves them and by the gunicorn
    access filter (``C2C_SECRET``); a value shorter than :data:`MIN_MASKED_LENGTH` is ignored.
    """
    global _known  # noqa: PLW0603  # the process's secrets: replaced whole, read without a lock
    if len(value) < MIN_MASKED_LENGTH or value in _known.values:
        return
    with _known_lock:
        values = tuple(known for known in _known.values if known != value)
        _known = _Known((*values, value)[-_MAX_SECRETS:])


@_process_state.on_reset
def forget_secrets() -> None:
    """Forget the secrets given to :func:`add_secret` (for tests)."""
    global _known  # noqa: PLW0603  # see add_secret
    with _known_lock:
        _known = _Known(())


def _mask_known(text: str) -> str:
    known = _known
    if known.pattern is None or not known.may_appear(text):
        return text
    return known.pattern.sub(MASK, text)


def _is_secret_name(raw: str) -> bool:
    name = urllib.parse.unquote_plus(raw, errors="replace") if "%" in raw or "+" in raw else raw
    return _SECRET_NAME.search(name) is not None


def _mask_pairs(query: str) -> str:
    """Mask the whole value of each parameter with a secret name (as WebOb splits the query)."""
    parts = _PAIR_SEPARATORS.split(query)
    changed = False
    for index in range(0, len(parts), 2):
        name, equal, value = parts[index].partition("=")
        if equal and value and value != MASK and _is_secret_name(name):
            parts[index] = f"{name}={MASK}"
            changed = True
    return "".join(parts) if changed else query


def _words(text: str) -> bool:
    """Whether passes 2 and 3 may change ``text`` (see the comment in :func:`redact`)."""
    lowered = text.lower()
    if "ecret" in lowered or "-key" in lowered or "_key" in lowered:
        return True
    # Else a name can only be one with a percent-encoded letter of "ecret" or "-key".
    return "%" in text and _ENCODED_LETTER.search(lowered) is not None


def _mask_queries(text: str) -> str:
    """Mask the secret parameters of each query string in ``text`` (the same object if none)."""
    pieces: list[str] = []
    end = 0
    for match in _QUERY_IN_TEXT.finditer(text):
        query = match.group(1)
        masked = _mask_pairs(query)
        if masked is not query:
            pieces += (text[end : match.start(1)], masked)
            end = match.end(1)
    return "".join((*pieces, text[end:])) if pieces else text


def redact(text: str) -> str:
    """Return ``text`` with the values of secrets and API keys replaced by ``***``.

    Covers the configured secrets (:func:`add_secret`) in any spelling, the values of secret
    parameters in every query string of the text whatever the spelling of their name,
    ``secret=<value>`` (any query string, ``client_secret``, the ``C2C_SECRET`` cookie,
    URL-encoded ``secret%3D<value>``), quoted ``"secret": "<value>"`` and ``X-API-Key`` header
    values in any common spelling. Other text is returned unchanged (the same object), at the
    cost of a few substring searches.

    Args:
        text: the text to clean, typically a log message or a URL.

    Returns:
        The text with every secret value masked.
    """
    # The configured secrets first: the other passes could cut one in two and leave its end.
    text = _mask_known(text)
    # Cheap first pass: most log messages contain none of the words, and lowering the text plus
    # a few substring searches costs a few percent of a case-insensitive regular expression scan.
    # Every match contains "ecret" or "-key"/"_key" once lowered, or the percent-encoding of one
    # of their characters: re.IGNORECASE matches no other character than E, C, R, T, K (or the
    # Kelvin sign, lowered to k) and Y as those letters (a test checks it), and lowering keeps a
    # run of such characters together. The "s" of "secret" and the "i" of "api" are left out:
    # re.IGNORECASE also matches the long s (U+017F), the dotless i (U+0131) and the dotted
    # capital I (U+0130) there.
    if not _words(text):
        return text
    if "?" in text:
        text = _mask_queries(text)
    return _PATTERN.sub(_mask, text)


def redact_query(query: str) -> str:
    """Return the query string ``query`` (without its ``?``) redacted as :func:`redact` does.

    The value of each parameter whose percent-decoded name holds ``secret`` or ``x-api-key`` is
    masked whole, up to the next ``&`` or ``;``.

    Args:
        query: a raw query string, as sent (``QUERY_STRING``).

    Returns:
        The query string with every secret value masked (the same object when there is none).
    """
    query = _mask_known(query)
    if not _words(query):
        return query
    return _PATTERN.sub(_mask, _mask_pairs(query))


def _mask(match: re.Match[str]) -> str:
    key = match.group("key") or match.group("qkey") or match.group("hkey")
    return f"{key}{MASK}"


def may_hold_secret(text: str) -> bool:
    r"""Return False when :func:`redact` returns ``text`` itself; True when it may change it.

    A cheaper and broader first pass than ``redact``'s: ``ecret`` or ``key`` once lowered (every
    text with ``ecret``, ``-key`` or ``_key`` has one of them; ``KeyError`` gives a needless
    True), a ``%`` (a percent-encoded letter or secret), or a configured secret as is. It also
    holds for several texts at once: the words have no NUL character and lowering keeps each
    character's own lowercase (the Greek final sigma aside), so for texts joined by ``"\0"`` the
    result is False only when it is False for every one of them. A writer with several texts
    checks them in one pass and calls ``redact`` on each only when this is True.

    Args:
        text: a text, or several texts joined by ``"\0"``.

    Returns:
        Whether ``redact`` may change ``text`` (or one of the joined texts).
    """
    if "%" in text or _known.may_appear(text):
        return True
    lowered = text.lower()
    return "ecret" in lowered or "key" in lowered
