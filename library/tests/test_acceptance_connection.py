"""The acceptance client checks status, CORS and cache headers against a real HTTP server."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from _http_server import serve

from c2cwsgiutils.acceptance.connection import CacheExpected, Connection, check_response

ORIGIN = "http://example.test"
NO_CACHE = {"Cache-Control": "no-cache"}


def _app(request, method, body):
    parsed = urllib.parse.urlparse(request.path)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    headers = {"Content-Type": query.get("type", "application/json")}
    if "cache" in query:
        headers["Cache-Control"] = query["cache"]
    if query.get("acao") != "none":
        headers["Access-Control-Allow-Origin"] = query.get("acao", "*")
    if "credentials" in query:
        headers["Access-Control-Allow-Credentials"] = "true"
    echo = {
        "method": method,
        "path": parsed.path,
        "origin": request.headers.get("Origin"),
        "x_test": request.headers.get("X-Test"),
        "body": body.decode("utf-8", "replace"),
        "content_type": request.headers.get("Content-Type"),
    }
    if parsed.path == "/xml":
        return 200, {**headers, "Content-Type": "text/xml"}, b"<root><item>1</item></root>"
    return int(query.get("status", "200")), headers, json.dumps(echo).encode()


@pytest.fixture(scope="module")
def base_url():
    with serve(_app) as url:
        yield url


@pytest.fixture
def connection(base_url):
    return Connection(base_url, ORIGIN)


def test_base_url_gets_a_trailing_slash(base_url):
    """The base URL is normalised so relative paths join correctly."""
    assert Connection(base_url, ORIGIN).base_url == base_url + "/"
    assert Connection(base_url + "/", ORIGIN).base_url == base_url + "/"


def test_get_json_sends_origin_and_headers(connection):
    """get_json sends the Origin and the given headers and returns the decoded body."""
    echo = connection.get_json("a/b?cache=no-cache", headers={"X-Test": "yes"})
    assert echo["method"] == "GET"
    assert echo["path"] == "/a/b"
    assert echo["origin"] == ORIGIN
    assert echo["x_test"] == "yes"


def test_get_text_and_raw(connection):
    """The get method returns the text, get_raw the response object."""
    assert '"method": "GET"' in connection.get("x?cache=no-cache")
    response = connection.get_raw("x?cache=no-cache")
    assert response.json()["path"] == "/x"


def test_204_returns_none(connection):
    """A 204 answer gives None to the text and JSON helpers."""
    assert connection.get("x?status=204&cache=no-cache", expected_status=204) is None
    assert connection.get_json("x?status=204&cache=no-cache", expected_status=204) is None


def test_expected_status_tuple_and_mismatch(connection):
    """A tuple of statuses accepts any of them; another status fails with the body in the message."""
    connection.get_json("x?status=201&cache=no-cache", expected_status=(200, 201))
    with pytest.raises(AssertionError, match="status 404"):
        connection.get_json("x?status=404&cache=no-cache")


def test_cache_expectations(connection):
    """NO needs no-cache, YES needs a non-zero max-age without no-cache, DONT_CARE checks nothing."""
    with pytest.raises(AssertionError, match="no Cache-Control"):
        connection.get_json("x")
    connection.get_json("x", cache_expected=CacheExpected.DONT_CARE)
    connection.get_json("x?cache=public, max-age=60", cache_expected=CacheExpected.YES)
    with pytest.raises(AssertionError, match="max-age=0"):
        connection.get_json("x?cache=max-age=0", cache_expected=CacheExpected.YES)
    with pytest.raises(AssertionError, match="no-cache"):
        connection.get_json("x?cache=max-age=60, no-cache", cache_expected=CacheExpected.YES)
    with pytest.raises(AssertionError, match="expected no-cache"):
        connection.get_json("x?cache=max-age=60")


def test_cors_assertions(connection):
    """With credentials the allowed origin must be ours, otherwise it must be '*'."""
    connection.get_json(f"x?cache=no-cache&credentials=1&acao={urllib.parse.quote(ORIGIN)}")
    with pytest.raises(AssertionError, match="with credentials"):
        connection.get_json("x?cache=no-cache&credentials=1")
    with pytest.raises(AssertionError, match="Access-Control-Allow-Origin None"):
        connection.get_json("x?cache=no-cache&acao=none")
    echo = connection.get_json("x?cache=no-cache&acao=none", cors=False)
    assert echo["origin"] is None


def test_json_content_types(connection):
    """application/json and any +json type are accepted, others are not."""
    connection.get_json("x?cache=no-cache&type=application/problem%2Bjson")
    connection.get_json("x?cache=no-cache&type=application/json;%20charset=utf-8")
    with pytest.raises(AssertionError, match="not a JSON content type"):
        connection.get_json("x?cache=no-cache&type=text/plain")


def test_write_methods(connection):
    """post_json, put_json, patch_json, post_files, post and delete send the right method and body."""
    assert connection.post_json("p?cache=no-cache", json={"a": 1})["body"] == '{"a": 1}'
    assert connection.put_json("p?cache=no-cache", json={"b": 2})["method"] == "PUT"
    assert connection.patch_json("p?cache=no-cache", json={"c": 3})["method"] == "PATCH"
    files = connection.post_files("p?cache=no-cache", files={"f": ("f.txt", b"hello")})
    assert "multipart/form-data" in files["content_type"]
    assert "hello" in files["body"]
    assert '"method": "POST"' in connection.post("p?cache=no-cache", data="raw")
    assert connection.delete("p?cache=no-cache&status=204").status_code == 204
    with pytest.raises(AssertionError, match="status 200"):
        connection.delete("p?cache=no-cache")


def test_options_sends_no_origin(connection):
    """The options method does not add an Origin nor check CORS; preflight headers are the caller's."""
    response = connection.options("p?acao=none")
    assert response.json()["origin"] is None
    response = connection.options("p", headers={"Origin": "http://other"})
    assert response.json()["origin"] == "http://other"


def test_get_xml_with_schema(connection, tmp_path):
    """get_xml parses the body and validates it against an XSD when one is given."""
    document = connection.get_xml("xml?cache=no-cache")
    assert document.tag == "root"
    good = tmp_path / "good.xsd"
    good.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="root"><xs:complexType>'
        '<xs:sequence><xs:element name="item" type="xs:int"/></xs:sequence></xs:complexType></xs:element>'
        "</xs:schema>"
    )
    assert connection.get_xml("xml?cache=no-cache", schema=str(good)).findtext("item") == "1"
    bad = tmp_path / "bad.xsd"
    bad.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="other"/></xs:schema>'
    )
    with pytest.raises(Exception, match="root"):
        connection.get_xml("xml?cache=no-cache", schema=str(bad))


def test_check_response_standalone(connection):
    """check_response can be used on any requests response."""
    response = connection.get_raw("x?cache=no-cache")
    check_response(response)
    check_response(response, expected_status=(200,), cache_expected=CacheExpected.NO)
    with pytest.raises(AssertionError):
        check_response(response, expected_status=201)
