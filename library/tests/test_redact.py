"""The cheap first pass of ``redact`` never lets a secret through, and leaves other text untouched."""

from __future__ import annotations

import re
import sys
import urllib.parse
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2cwsgiutils import _redact
from c2cwsgiutils._redact import redact, redact_query

# A generated password with the separators that cut the old redaction short.
_SECRET = 'Gx7,q);z&p;w"t v%2C'


@pytest.fixture
def known_secret() -> Iterator[str]:
    """``_SECRET`` is the configured secret of the process during the test."""
    _redact.forget_secrets()
    _redact.add_secret(_SECRET)
    yield _SECRET
    _redact.forget_secrets()


def _reference(text: str) -> str:
    """Every pass of ``redact`` without its first, cheap, pass."""
    known = _redact._known
    if known.pattern is not None:
        text = known.pattern.sub(_redact.MASK, text)
    return _redact._PATTERN.sub(_redact._mask, _redact._mask_queries(text))


def _every_character() -> str:
    return "".join(chr(code) for code in range(sys.maxunicode + 1))


@pytest.mark.parametrize("letter", "ecrtky")
def test_case_insensitive_letters_lower_to_the_letter(letter):
    """Every character re.IGNORECASE matches as one of the letters searched once lowered lowers to it."""
    matched = re.findall(letter, _every_character(), re.IGNORECASE)
    assert len(matched) >= 2  # the letter in both cases at least
    assert {character.lower() for character in matched} == {letter}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /c2c?SECRET=s3cret&x=1", "GET /c2c?SECRET=***&x=1"),
        ("GET /c2c?SeCrEt=s3cret&x=1", "GET /c2c?SeCrEt=***&x=1"),
        ("came_from=%2F%3FSecret%3ds3cret", "came_from=%2F%3FSecret%3d***"),
        ("came_from=%2F%3FSECRET%3Ds3cret&x=1", "came_from=%2F%3FSECRET%3D***&x=1"),
        ("{'Secret': 's3cret'}", "{'Secret': '***'}"),
        ('{"SECRET" : "s3cret"}', '{"SECRET" : "***"}'),
        ("x-api-key=k3y&a=1", "x-api-key=***&a=1"),
        ("X_API_KEY: k3y", "X_API_KEY: ***"),
        ("x-Api_kEy = 'k3y'", "x-Api_kEy = '***'"),
        ('{"X-Api-Key": "k3y"}', '{"X-Api-Key": "***"}'),
        # Characters that re.IGNORECASE matches as ASCII letters: long s, dotless i, Kelvin sign.
        ("?\u017fecret=s3cret", "?\u017fecret=***"),
        ("x-ap\u0131-key: k3y", "x-ap\u0131-key: ***"),
        ("X-AP\u0130-KEY: k3y", "X-AP\u0130-KEY: ***"),
        ("x-api-\u212aey: k3y", "x-api-\u212aey: ***"),
        ("café secret=s3cret", "café secret=***"),
        # Parameter names with percent-encoded letters: WebOb decodes them, so they are the secret.
        ("GET /c2c?%73ecret=s3cret&x=1", "GET /c2c?%73ecret=***&x=1"),
        ("GET /c2c?secr%65t=s3cret&x=1", "GET /c2c?secr%65t=***&x=1"),
        ("GET /c2c?%53ecret=s3cret&x=1", "GET /c2c?%53ecret=***&x=1"),
        ("GET /c2c?%73%65%63%72%65%74=s3cret&x=1", "GET /c2c?%73%65%63%72%65%74=***&x=1"),
        ("/c2c?a=1&x%2Dapi%2Dkey=k3y", "/c2c?a=1&x%2Dapi%2Dkey=***"),
        ("%73ecret=s3cret,x and more", "%73ecret=***,x and more"),
        # In a query string, the whole value, up to the next & or ; (WebOb's separators).
        ('GET /c2c?secret=a,b)c"d)&x=1 HTTP/1.1', "GET /c2c?secret=***&x=1 HTTP/1.1"),
        ("GET /c2c?secret=a,b);c&x=1 HTTP/1.1", "GET /c2c?secret=***;c&x=1 HTTP/1.1"),
        ("/c2c?a=1;secret=a,b&x=1", "/c2c?a=1;secret=***&x=1"),
        ("/c2c?client_secret=(a,b)", "/c2c?client_secret=***"),
    ],
)
def test_every_spelling_is_redacted(text, expected):
    """Mixed case, URL-encoded and look-alike spellings all reach the regular expression."""
    assert redact(text) == expected


def _encoded_one_by_one(name: str) -> list[str]:
    """``name`` with one character percent-encoded, in each case and with each hex case."""
    codes = [
        (index, f"{ord(variant):02X}")
        for index, character in enumerate(name)
        for variant in dict.fromkeys((character.lower(), character.upper()))
    ]
    return [
        f"{name[:index]}%{digits}{name[index + 1 :]}"
        for index, code in codes
        for digits in dict.fromkeys((code, code.lower()))
    ]


@pytest.mark.parametrize(
    "name", [*_encoded_one_by_one("secret"), *_encoded_one_by_one("x-api-key"), "x-api-%E2%84%AAey"]
)
def test_any_percent_encoded_letter_of_a_name_is_found(name):
    """A secret parameter name with any one of its characters percent-encoded still masks its value."""
    assert redact(f"/c2c?{name}=v4lue&a=1") == f"/c2c?{name}=***&a=1"
    assert redact_query(f"{name}=v4lue&a=1") == f"{name}=***&a=1"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("%73ecret=s,3)c;r&x=1", "%73ecret=***;r&x=1"),
        ("x=1&SeCr%45t=a%2Cb%29", "x=1&SeCr%45t=***"),
        ('a="b"&secret=x"y', 'a="b"&secret=***'),
        ("came_from=%2F%3Fsecret%3Da%2Cb&x=1", "came_from=%2F%3Fsecret%3D***&x=1"),
        ("secret=&x=1", "secret=&x=1"),
    ],
)
def test_query_values_are_masked_whole(query, expected):
    """In a query string alone, secret parameters are found by their decoded name, masked whole."""
    assert redact_query(query) == expected


@pytest.mark.parametrize(
    "spelling",
    [
        _SECRET,
        urllib.parse.quote(_SECRET),
        urllib.parse.quote(_SECRET, safe=""),
        urllib.parse.quote_plus(_SECRET),
        re.sub("%[0-9A-F]{2}", lambda match: match.group().lower(), urllib.parse.quote(_SECRET, safe="")),
        'Gx7%2Cq);z&p;w"t+v%2C',
    ],
)
def test_configured_secret_is_masked_in_any_spelling(known_secret, spelling):
    """The configured secret is masked whole, raw or percent-encoded, whatever the key around it."""
    for text in (f"?name={spelling}&x=1", f"the value {spelling}.", f"/c2c/{spelling}"):
        result = redact(text)
        assert "Gx7" not in result
        assert "v%2C" not in result
        assert result == text.replace(spelling, _redact.MASK)
        assert redact_query(text[1:]) == text[1:].replace(spelling, _redact.MASK)


def test_short_configured_secret_is_masked_only_as_a_parameter():
    """A configured secret shorter than 8 characters would garble words: only ``secret=`` masks it."""
    _redact.forget_secrets()
    try:
        _redact.add_secret("short")
        assert redact("a short text") == "a short text"
        assert redact("/c2c?secret=short") == "/c2c?secret=***"
    finally:
        _redact.forget_secrets()


@pytest.mark.parametrize(
    "text",
    [
        "the service is ready",
        "KeyError: 'order'",
        "a monkey ate the keys",
        "Missing key in /api/items",
        "café ☕ à Zürich",
        "",
        "secre",
    ],
)
def test_innocent_text_is_the_same_object(text):
    """Text without a secret is returned as is, also when it has "key" in another word."""
    assert redact(text) is text


_pieces = st.sampled_from(
    [
        "secret",
        "SECRET",
        "Secret",
        "\u017fecret",
        "x-api-key",
        "X_API_KEY",
        "x-ap\u0131-key",
        "X-AP\u0130-KEY",
        "x_api_\u212aey",
        "key",
        "KeyError",
        "=",
        "%3D",
        "%3d",
        ":",
        " ",
        "'",
        '"',
        "&",
        "value",
        "é",
        "\u03a3",
    ]
)


_query_pieces = st.sampled_from(
    [
        *("?", "&", ";", "%73", "%53", "%65", "%45", "%74", "%2C", "%2c", "%2D", "%5f", "%6B", "%79"),
        *("%E2%84%AA", "%C5%BF", "x-api", "ey", "+", ",", ")", _SECRET, "Gx7", "t v", "%2Cq"),
    ]
)


@given(st.lists(_pieces | _query_pieces | st.text(max_size=3), max_size=12).map("".join))
def test_first_pass_never_changes_the_result(text):
    """``redact`` gives what its passes alone give, and the same object when unchanged."""
    _redact.add_secret(_SECRET)
    try:
        result = redact(text)
        assert result == _reference(text)
        if result == text:
            assert result is text
        assert _SECRET not in result
    finally:
        _redact.forget_secrets()


@given(
    st.lists(
        st.lists(_pieces | _query_pieces | st.text(max_size=3), max_size=6).map("".join),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_may_hold_secret_is_false_only_when_redact_changes_nothing(texts, with_secret):
    """For texts joined by NUL, ``may_hold_secret`` is False only if ``redact`` returns each text itself."""
    if with_secret:
        _redact.add_secret(_SECRET)
    try:
        if not _redact.may_hold_secret("\0".join(texts)):
            assert all(redact(text) is text for text in texts)
        joined = _redact.may_hold_secret("\0".join(texts))
        assert joined == any(_redact.may_hold_secret(text) for text in texts)
    finally:
        _redact.forget_secrets()
