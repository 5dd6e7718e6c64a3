"""Parsing of the proxy headers and their application to a WSGI environ (see :mod:`.client_info`).

Everything here is pure and precomputed: the regular expressions are compiled at import time and
a :class:`Processor` is built once per filter or per application, so a request costs a few
dictionary operations when it carries no proxy header.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence

__all__ = ["MARK", "Network", "Processor", "RateLimitedLog", "node_host", "parse_forwarded"]

# Set in the environ once the proxy headers are processed, so the tween does not redo the work
# of the WSGI filter (a second pass would read the headers the first pass already consumed).
MARK = "c2cwsgiutils.client_info"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Longer proxy headers are not parsed: no proxy chain needs that much, a client flooding us does.
MAX_HEADER_LENGTH = 16 * 1024
_CACHE_SIZE = 1024
_MAX_ADDRESS_LENGTH = 45  # longest textual IPv6 address (with an IPv4 suffix)
_SHOWN = 80  # characters of an offending value shown in a warning

# One lexeme of a Forwarded header: a quoted string (maybe unterminated), a separator, or text.
# Every character belongs to exactly one alternative, so a scan is linear whatever the input.
_LEXEME = re.compile(r'"((?:[^"\\]|\\.)*)(")?|([;,])|([^;,"]+)', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Unquoted values: lenient (proxies often send ``for=[2001:db8::1]`` unquoted), but no blanks,
# quotes or control characters.
_BARE_VALUE = re.compile(r'[^\s"\\\x00-\x1f\x7f]+')
_PORT = re.compile(r"[0-9]{1,5}|_[A-Za-z0-9._-]+")
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")
# A host name, IPv4 or bracketed IPv6 address, with an optional port. Deliberately narrower than
# RFC 3986 reg-name: the host ends up in generated URLs and HTML.
_HOST = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_SCHEMES = frozenset({"http", "https"})

# X-Forwarded-* headers moved aside in both modes (as the reference implementation does).
X_FORWARDED = (
    "HTTP_X_FORWARDED_SERVER",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_SCHEME",
    "HTTP_X_FORWARDED_PROTO",
)


class RateLimitedLog:
    """Log a warning per kind at most once per ``interval`` seconds, counting the others.

    Malformed headers come from clients: one warning line per request would let any client
    flood the logs.
    """

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self._logger = logger
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, kind: str, value: str) -> None:
        """Warn that a header had a problem of ``kind`` (a fixed string); ``value`` is shown."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        self._logger.warning(
            "Ignoring %s in a proxy header: %r (%d similar warnings suppressed in the last %d s)",
            kind,
            value[:_SHOWN],
            suppressed,
            self._interval,
        )


class _MalformedError(ValueError):
    """A pair of a Forwarded header is malformed; the message is the kind of problem."""


def _quoted(rest: Sequence[re.Match[str]]) -> str:
    quoted = rest[0] if rest else None
    if quoted is None or quoted.group(1) is None:
        raise _MalformedError("an empty parameter value")
    if quoted.group(2) is None:
        raise _MalformedError("an unterminated quoted string")
    if any(lexeme.group(4) is None or lexeme.group(4).strip() for lexeme in rest[1:]):
        raise _MalformedError("text after a quoted string")
    return _QUOTED_PAIR.sub(r"\1", quoted.group(1))


def _key_value(part: Sequence[re.Match[str]]) -> tuple[str, str] | None:
    """Return the ``key=value`` pair made of the lexemes ``part`` (``None`` if blank)."""
    text = part[0].group(4)
    if text is None:
        raise _MalformedError("a parameter without a name")
    if len(part) == 1 and not text.strip():
        return None  # empty list items are allowed by RFC 7230
    key, equal, value = text.partition("=")
    key, value = key.strip().lower(), value.strip()
    if not equal:
        raise _MalformedError("a parameter without '='")
    if _TOKEN.fullmatch(key) is None:
        raise _MalformedError("an invalid parameter name")
    if not value:
        return key, _quoted(part[1:])
    if len(part) > 1 or _BARE_VALUE.fullmatch(value) is None:
        raise _MalformedError("an invalid parameter value")
    return key, value


def _pair(part: Sequence[re.Match[str]], element: dict[str, str], problems: list[str]) -> None:
    if not part:
        return
    try:
        pair = _key_value(part)
    except _MalformedError as error:
        problems.append(str(error))
        return
    if pair is None:
        return
    if pair[0] in element:
        problems.append("a repeated parameter")
    else:
        element[pair[0]] = pair[1]


def parse_forwarded(value: str) -> tuple[list[dict[str, str]], list[str]]:
    """Parse an RFC 7239 ``Forwarded`` header.

    Args:
        value: the header value (any text: WSGI gives headers as latin-1 strings).

    Returns:
        The non-empty elements, left to right, as dictionaries with lower-case keys and
        unquoted values, and the list of problems found (the faulty pairs are left out).
    """
    elements: list[dict[str, str]] = [{}]
    problems: list[str] = []
    part: list[re.Match[str]] = []
    for lexeme in _LEXEME.finditer(value):
        separator = lexeme.group(3)
        if separator is None:
            part.append(lexeme)
            continue
        _pair(part, elements[-1], problems)
        part = []
        if separator == ",":
            elements.append({})
    _pair(part, elements[-1], problems)
    return [element for element in elements if element], problems


def _is_ip(text: str) -> bool:
    if ":" not in text:  # the common case, without the cost of the ipaddress module
        return _IPV4.fullmatch(text) is not None
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def node_host(node: str) -> str | None:
    """Return the address of an RFC 7239 node (``for``/``by``) or X-Forwarded-For item.

    Accepts ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:80``, a bare IPv6 address, ``unknown``
    and obfuscated identifiers (``_hidden``); ports are dropped. Anything else gives ``None``.
    """
    node = node.strip()
    if node.startswith("["):
        host, bracket, rest = node[1:].partition("]")
        if not bracket or (rest and (rest[0] != ":" or _PORT.fullmatch(rest[1:]) is None)):
            return None
        return host if ":" in host and _is_ip(host) else None
    host, colon, port = node.partition(":")
    if colon and ":" in port:  # a bare IPv6 address
        return node if _is_ip(node) else None
    if colon and _PORT.fullmatch(port) is None:
        return None
    if host.lower() == "unknown" or _OBFUSCATED.fullmatch(host) is not None or _is_ip(host):
        return host
    return None


class Processor:
    """Apply the proxy headers of a WSGI environ, in place, with fixed settings.

    Args:
        trusted: networks of the trusted proxies; empty means that every client is trusted
            and the left-most values are used (the reference behaviour).
        force: environ keys and the values that always override them.
        log: where the warnings about malformed headers go.
    """

    def __init__(self, trusted: Sequence[Network], force: Mapping[str, str], log: RateLimitedLog) -> None:
        self._trusted = tuple(trusted)
        self._force = tuple((key, value) for key, value in force.items() if value)
        self._log = log
        # Parsing an address with the ipaddress module costs microseconds: remember the answers.
        self._cache: dict[str, bool] = {}

    def is_trusted(self, address: str | None) -> bool:
        """Tell if ``address`` (text) is one of the trusted proxies."""
        if not address:
            return False
        if len(address) > _MAX_ADDRESS_LENGTH:  # not an address (an obfuscated identifier)
            return self._is_trusted(address)
        trusted = self._cache.get(address)
        if trusted is None:
            trusted = self._is_trusted(address)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # bounded; the proxies' addresses come back at once
            self._cache[address] = trusted
        return trusted

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        mapped = getattr(ip, "ipv4_mapped", None)  # a dual-stack socket reports ::ffff:a.b.c.d
        return any(ip in network or (mapped is not None and mapped in network) for network in self._trusted)

    def __call__(self, environ: dict[str, object]) -> None:
        """Process ``environ`` once (it is marked); never raises on bad input."""
        if environ.get(MARK):
            return
        environ[MARK] = True
        forwarded = environ.get("HTTP_FORWARDED")
        moved = {}
        for key in X_FORWARDED:
            if key in environ:
                moved[key] = str(environ.pop(key))
                environ["HTTP_ORIGINAL_" + key[5:]] = moved[key]
        if isinstance(forwarded, str):
            environ["HTTP_ORIGINAL_FORWARDED"] = forwarded
            if self._honoured(environ) and self._short(forwarded):
                self._apply_forwarded(environ, forwarded)
        elif moved and self._honoured(environ):
            self._apply_x_forwarded(environ, moved)
        for key, value in self._force:
            if key == "HTTP_HOST":
                self._set_host(environ, value)
            else:
                environ[key] = value

    def _honoured(self, environ: dict[str, object]) -> bool:
        return not self._trusted or self.is_trusted(str(environ.get("REMOTE_ADDR", "")))

    def _short(self, value: str) -> bool:
        if len(value) > MAX_HEADER_LENGTH:
            self._log.warning("a header longer than 16 KiB", value)
            return False
        return True

    def _set_host(self, environ: dict[str, object], host: str) -> None:
        if "HTTP_HOST" in environ and "HTTP_ORIGINAL_HOST" not in environ:
            environ["HTTP_ORIGINAL_HOST"] = environ["HTTP_HOST"]
        environ["HTTP_HOST"] = host

    def _apply_forwarded(self, environ: dict[str, object], header: str) -> None:
        elements, problems = parse_forwarded(header)
        for problem in problems:
            self._log.warning(problem, header)
        if not elements:
            return
        chosen = elements[0]
        if self._trusted:
            # Right to left: each element was added by the proxy that received the request from
            # its 'for'; the first 'for' that is not a trusted proxy is the client.
            for element in reversed(elements):
                chosen = element
                if not self.is_trusted(node_host(element.get("for", ""))):
                    break
        self._apply_node(environ, "REMOTE_ADDR", chosen.get("for"), header)
        self._apply_node(environ, "SERVER_NAME", chosen.get("by"), header)
        self._apply_host(environ, chosen.get("host"), header)
        self._apply_scheme(environ, chosen.get("proto"), header)

    def _apply_x_forwarded(self, environ: dict[str, object], moved: dict[str, str]) -> None:
        values = {
            key: [item.strip() for item in value.split(",")]
            for key, value in moved.items()
            if self._short(value)
        }
        addresses = values.get("HTTP_X_FORWARDED_FOR", [])
        index = 0
        if self._trusted:
            index = len(addresses) - 1
            while index > 0 and self.is_trusted(node_host(addresses[index])):
                index -= 1

        def pick(key: str) -> str | None:
            items = values.get(key)
            if not items:
                return None
            if not self._trusted:
                return items[0]
            # A list as long as X-Forwarded-For was appended hop by hop: take the client's hop.
            # Otherwise the right-most value is the one set by the trusted proxy.
            return items[index] if len(items) == len(addresses) else items[-1]

        server = pick("HTTP_X_FORWARDED_SERVER")
        if server:
            if _HOST.fullmatch(server) is None:
                self._log.warning("an invalid host", server)
            else:
                environ["SERVER_NAME"] = server
                self._set_host(environ, server)
        self._apply_host(environ, pick("HTTP_X_FORWARDED_HOST"), moved.get("HTTP_X_FORWARDED_HOST", ""))
        if addresses:
            self._apply_node(environ, "REMOTE_ADDR", addresses[index], moved["HTTP_X_FORWARDED_FOR"])
        scheme = pick("HTTP_X_FORWARDED_SCHEME") or pick("HTTP_X_FORWARDED_PROTO")
        self._apply_scheme(environ, scheme, scheme or "")

    def _apply_node(self, environ: dict[str, object], key: str, node: str | None, header: str) -> None:
        if node is None:
            return
        host = node_host(node)
        if host is None:
            self._log.warning("an invalid node (address)", header)
        else:
            environ[key] = host

    def _apply_host(self, environ: dict[str, object], host: str | None, header: str) -> None:
        if not host:
            return
        if _HOST.fullmatch(host) is None:
            self._log.warning("an invalid host", header)
        else:
            self._set_host(environ, host)

    def _apply_scheme(self, environ: dict[str, object], scheme: str | None, header: str) -> None:
        if not scheme:
            return
        scheme = scheme.lower()
        if scheme in _SCHEMES:
            environ["wsgi.url_scheme"] = scheme
        else:
            self._log.warning("an invalid protocol", header)
