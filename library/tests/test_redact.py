"""The cheap first pass of ``redact`` never lets a secret through, and leaves other text untouched."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2cwsgiutils import _redact
from c2cwsgiutils._redact import redact


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
    ],
)
def test_every_spelling_is_redacted(text, expected):
    """Mixed case, URL-encoded and look-alike spellings all reach the regular expression."""
    assert redact(text) == expected


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


@given(st.lists(_pieces | st.text(max_size=3), max_size=12).map("".join))
def test_first_pass_never_changes_the_result(text):
    """``redact`` gives what the regular expression alone gives, and the same object when unchanged."""
    expected = _redact._PATTERN.sub(_redact._mask, text)
    result = redact(text)
    assert result == expected
    if result == text:
        assert result is text


@given(st.lists(st.lists(_pieces | st.text(max_size=3), max_size=6).map("".join), min_size=1, max_size=5))
def test_may_hold_secret_is_false_only_when_redact_changes_nothing(texts):
    """For texts joined by NUL, ``may_hold_secret`` is False only if ``redact`` returns each text itself."""
    if not _redact.may_hold_secret("\0".join(texts)):
        assert all(redact(text) is text for text in texts)
    assert _redact.may_hold_secret("\0".join(texts)) == any(_redact.may_hold_secret(text) for text in texts)
