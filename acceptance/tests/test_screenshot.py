"""The index page in headless Chromium, light and dark themes, compared with reviewed screenshots.

``C2CACC_GENERATE_IMAGES=1`` rewrites the expected images (review them before committing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from c2cwsgiutils.acceptance.image import check_screenshot
from conftest import Stack

EXPECTED = Path(__file__).resolve().parent / "screenshots"
RESULTS = os.environ.get("C2CACC_RESULTS", "/tmp/c2cacc-results")  # test output, per machine


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_index_screenshot(stack: Stack, theme: str) -> None:
    check_screenshot(
        stack.url("app") + "c2c",
        RESULTS,
        str(EXPECTED / f"index-{theme}.expected.png"),
        width=900,
        height=700,
        media=[{"name": "prefers-color-scheme", "value": theme}],
        level=0.98,
        generate_expected_image=os.environ.get("C2CACC_GENERATE_IMAGES") == "1",
    )
