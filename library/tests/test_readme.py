from __future__ import annotations

import pathlib

from c2cwsgiutils import _settings

README = pathlib.Path(__file__).parent.parent / "README.md"


def test_settings_table_is_up_to_date():
    """The README's settings table is exactly what the code declares."""
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    expected = _settings.reference(_settings.all_settings_classes())
    assert table == expected, "run: python -m c2cwsgiutils._settings and paste it in library/README.md"
