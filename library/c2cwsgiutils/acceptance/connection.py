"""An HTTP client for acceptance tests that checks status, CORS and cache headers."""

from __future__ import annotations

import enum
import re
from typing import Any

import requests

__all__ = ["CacheExpected", "Connection", "check_response"]

_JSON_CONTENT_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$", re.IGNORECASE)


class CacheExpected(enum.Enum):
    """What a response's ``Cache-Control`` header must say."""

    NO = 0
    YES = 1
    DONT_CARE = 2


def _cache_tokens(response: requests.Response) -> list[str]:
    header = response.headers.get("Cache-Control")
    return [] if header is None else [token.strip().lower() for token in header.split(",")]


def check_response(
    r: requests.Response,
    expected_status: int | tuple[int, ...] = 200,
    cache_expected: CacheExpected = CacheExpected.DONT_CARE,
) -> None:
    """Assert a response's status and caching headers.

    Args:
        r: The response.
        expected_status: The expected status, or a tuple of acceptable ones.
        cache_expected: ``NO``: ``Cache-Control`` must contain ``no-cache``; ``YES``: it must have a
            non-zero ``max-age`` and no ``no-cache``; ``DONT_CARE``: not checked.

    Raises:
        AssertionError: When a check fails.
    """
    statuses = expected_status if isinstance(expected_status, tuple) else (expected_status,)
    assert r.status_code in statuses, (
        f"{r.request.method} {r.url}: status {r.status_code} not in {statuses}: {r.text[:1000]}"
    )
    tokens = _cache_tokens(r)
    if cache_expected is CacheExpected.NO:
        assert "Cache-Control" in r.headers, f"{r.url}: no Cache-Control header"
        assert "no-cache" in tokens, f"{r.url}: expected no-cache, got {r.headers['Cache-Control']!r}"
    elif cache_expected is CacheExpected.YES:
        assert "Cache-Control" in r.headers, f"{r.url}: no Cache-Control header"
        header = r.headers["Cache-Control"]
        assert any(t.startswith("max-age=") for t in tokens), f"{r.url}: no max-age in {header!r}"
        assert "max-age=0" not in tokens, f"{r.url}: max-age=0 in {header!r}"
        assert "no-cache" not in tokens, f"{r.url}: no-cache in {header!r}"


class Connection:
    """A client of one service, with its own ``requests`` session.

    Every method takes ``expected_status`` (an int or a tuple of ints), ``headers``, ``cors``
    (send ``Origin`` and check the ``Access-Control-Allow-*`` answer), ``cache_expected`` and any
    other keyword argument of ``requests``.
    """

    def __init__(self, base_url: str, origin: str) -> None:
        """Create the client.

        Args:
            base_url: The root URL of the service (a trailing ``/`` is added when missing).
            origin: The value of the ``Origin`` header sent when ``cors`` is true.
        """
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.origin = origin
        self.session = requests.Session()

    def _url(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        return self.base_url + url.lstrip("/")

    def _headers(self, headers: dict[str, str] | None, cors: bool) -> dict[str, str]:
        result = dict(headers or {})
        if cors:
            result.setdefault("Origin", self.origin)
        return result

    def _check_cors(self, r: requests.Response) -> None:
        allow_origin = r.headers.get("Access-Control-Allow-Origin")
        if r.headers.get("Access-Control-Allow-Credentials") == "true":
            assert allow_origin == self.origin, (
                f"{r.url}: Access-Control-Allow-Origin {allow_origin!r} != {self.origin!r} with credentials"
            )
        else:
            assert allow_origin == "*", f"{r.url}: Access-Control-Allow-Origin {allow_origin!r} != '*'"

    def _request(
        self,
        method: str,
        url: str,
        expected_status: int | tuple[int, ...],
        headers: dict[str, str] | None,
        cors: bool,
        cache_expected: CacheExpected,
        **kwargs: Any,
    ) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        r = self.session.request(method, self._url(url), headers=self._headers(headers, cors), **kwargs)
        check_response(r, expected_status, cache_expected)
        if cors:
            self._check_cors(r)
        return r

    @staticmethod
    def _json(r: requests.Response) -> Any:
        if r.status_code == 204:  # noqa: PLR2004 # No Content
            return None
        content_type = r.headers.get("Content-Type", "").split(";")[0].strip()
        assert _JSON_CONTENT_TYPE.match(content_type), f"{r.url}: not a JSON content type: {content_type!r}"
        return r.json()

    def get_raw(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> requests.Response:
        """GET ``url`` and return the checked response."""
        return self._request("GET", url, expected_status, headers, cors, cache_expected, **kwargs)

    def get(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> str | None:
        """GET ``url`` and return its text (``None`` on 204)."""
        r = self._request("GET", url, expected_status, headers, cors, cache_expected, **kwargs)
        return None if r.status_code == 204 else r.text  # noqa: PLR2004 # No Content

    def get_json(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> Any:
        """GET ``url`` and return its JSON body (``None`` on 204)."""
        return self._json(self._request("GET", url, expected_status, headers, cors, cache_expected, **kwargs))

    def get_xml(
        self,
        url: str,
        schema: str | None = None,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> Any:
        """GET ``url`` and return its body parsed by lxml, validated with the XSD file ``schema``."""
        from lxml import etree  # type: ignore[import-untyped] # lxml ships no type information

        r = self._request("GET", url, expected_status, headers, cors, cache_expected, **kwargs)
        document = etree.fromstring(r.content)  # the test's own service, not hostile input
        if schema is not None:
            xml_schema = etree.XMLSchema(etree.parse(schema))  # a schema file of the test suite
            xml_schema.assertValid(document)
        return document

    def post_json(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> Any:
        """POST to ``url`` (pass ``json=`` for the body) and return the JSON answer."""
        return self._json(
            self._request("POST", url, expected_status, headers, cors, cache_expected, **kwargs)
        )

    def post_files(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> Any:
        """POST files to ``url`` (pass ``files=``) and return the JSON answer."""
        return self._json(
            self._request("POST", url, expected_status, headers, cors, cache_expected, **kwargs)
        )

    def post(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> str | None:
        """POST to ``url`` and return the text answer (``None`` on 204)."""
        r = self._request("POST", url, expected_status, headers, cors, cache_expected, **kwargs)
        return None if r.status_code == 204 else r.text  # noqa: PLR2004 # No Content

    def put_json(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> Any:
        """PUT to ``url`` (pass ``json=``) and return the JSON answer."""
        return self._json(self._request("PUT", url, expected_status, headers, cors, cache_expected, **kwargs))

    def patch_json(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> Any:
        """PATCH ``url`` (pass ``json=``) and return the JSON answer."""
        return self._json(
            self._request("PATCH", url, expected_status, headers, cors, cache_expected, **kwargs)
        )

    def delete(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 204,
        headers: dict[str, str] | None = None,
        cors: bool = True,
        cache_expected: CacheExpected = CacheExpected.NO,
        **kwargs: Any,
    ) -> requests.Response:
        """DELETE ``url`` (204 expected by default) and return the response."""
        return self._request("DELETE", url, expected_status, headers, cors, cache_expected, **kwargs)

    def options(
        self,
        url: str,
        expected_status: int | tuple[int, ...] = 200,
        headers: dict[str, str] | None = None,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> requests.Response:
        """OPTIONS ``url`` (no ``Origin`` added: pass the preflight headers) and return the response."""
        return self._request("OPTIONS", url, expected_status, headers, False, cache_expected, **kwargs)
