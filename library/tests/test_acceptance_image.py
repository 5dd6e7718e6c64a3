"""Image comparisons (identical, masked, different, missing expected) and Chromium screenshots."""

from __future__ import annotations

import os

import numpy as np
import pytest
import skimage.io
from _http_server import serve

from c2cwsgiutils.acceptance.image import check_image, check_image_file, check_screenshot, normalize_image

PAGE = b"""<!DOCTYPE html><html><head><style>
body { margin: 0; background: white; }
div { position: absolute; left: 20px; top: 20px; width: 100px; height: 50px; background: #c00; }
@media (prefers-color-scheme: dark) { body { background: black; } }
</style></head><body><div></div></body></html>"""


def _picture(colour=(200, 0, 0)):
    img = np.full((60, 80, 3), 255, dtype=np.uint8)
    img[10:30, 10:50] = colour
    return img


def test_normalize_image():
    """Alpha is dropped, grey becomes RGB and floats become uint8."""
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    assert normalize_image(rgba).shape == (4, 5, 3)
    grey = np.ones((4, 5), dtype=np.float64)
    normalized = normalize_image(grey)
    assert normalized.dtype == np.uint8
    assert normalized.shape == (4, 5, 3)
    assert normalized.max() == 255


def test_identical_images_pass(tmp_path):
    """An identical image passes and writes no diff."""
    expected = tmp_path / "pic.expected.png"
    skimage.io.imsave(expected, _picture(), check_contrast=False)
    check_image(str(tmp_path / "results"), _picture(), str(expected))
    assert not (tmp_path / "results" / "pic.diff.png").exists()


def test_different_image_fails_with_diff(tmp_path):
    """A different image fails with its SSIM score and writes the diff and actual-masked images."""
    expected = tmp_path / "pic.expected.png"
    skimage.io.imsave(expected, _picture(), check_contrast=False)
    results = tmp_path / "results"
    with pytest.raises(AssertionError, match=r"SSIM score 0\.[0-9]+ < 1\.0"):
        check_image(str(results), _picture((0, 0, 200)), str(expected))
    diff = skimage.io.imread(results / "pic.diff.png")
    assert diff[20, 20].max() > 0
    assert diff[50, 70].max() == 0
    assert (results / "pic.actual-masked.png").exists()
    check_image(str(results), _picture((0, 0, 200)), str(expected), level=0.1)


def test_mask_hides_changing_regions(tmp_path):
    """Black pixels of the mask are ignored; use_mask=False compares them again."""
    expected = tmp_path / "pic.expected.png"
    skimage.io.imsave(expected, _picture(), check_contrast=False)
    mask = np.full((60, 80, 3), 255, dtype=np.uint8)
    mask[5:35, 5:55] = 0
    skimage.io.imsave(tmp_path / "pic.mask.png", mask, check_contrast=False)
    check_image(str(tmp_path / "results"), _picture((0, 200, 0)), str(expected))
    with pytest.raises(AssertionError):
        check_image(str(tmp_path / "results"), _picture((0, 200, 0)), str(expected), use_mask=False)


def test_missing_expected_is_written_then_fails(tmp_path):
    """A missing expected image is written from the actual one and the check fails once."""
    expected = tmp_path / "new.expected.png"
    with pytest.raises(AssertionError, match="was missing"):
        check_image(str(tmp_path / "results"), _picture(), str(expected))
    assert np.array_equal(skimage.io.imread(expected), _picture())
    check_image(str(tmp_path / "results"), _picture(), str(expected))


def test_size_mismatch_and_check_image_file(tmp_path):
    """Files are compared from disk; a size change is reported clearly."""
    expected = tmp_path / "pic.expected.png"
    skimage.io.imsave(expected, _picture(), check_contrast=False)
    actual = tmp_path / "actual.png"
    skimage.io.imsave(actual, _picture(), check_contrast=False)
    check_image_file(str(tmp_path / "results"), str(actual), str(expected))
    skimage.io.imsave(actual, _picture()[:50], check_contrast=False)
    with pytest.raises(AssertionError, match="size"):
        check_image_file(str(tmp_path / "results"), str(actual), str(expected))


@pytest.fixture(scope="module")
def page_url():
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("/usr/bin/chromium is missing: apt-get install -y chromium")

    def app(request, method, body):
        return 200, {"Content-Type": "text/html"}, PAGE

    with serve(app) as url:
        yield url + "/"


def test_check_screenshot(page_url, tmp_path):
    """A page screenshot is compared with the expected one, including emulated dark mode."""
    results = str(tmp_path / "results")
    expected = str(tmp_path / "page.expected.png")
    check_screenshot(
        page_url, results, expected, width=200, height=100, sleep=10, generate_expected_image=True
    )
    img = skimage.io.imread(expected)
    assert img.shape[:2] == (100, 200)
    assert tuple(img[40, 60][:3]) == (204, 0, 0)
    assert tuple(img[90, 190][:3]) == (255, 255, 255)
    check_screenshot(page_url, results, expected, width=200, height=100, sleep=10)
    assert os.path.exists(os.path.join(results, "page.actual.png"))
    with pytest.raises(AssertionError, match="SSIM"):
        check_screenshot(
            page_url,
            results,
            expected,
            width=200,
            height=100,
            sleep=10,
            media=[{"name": "prefers-color-scheme", "value": "dark"}],
        )
    assert os.path.exists(os.path.join(results, "page.diff.png"))
