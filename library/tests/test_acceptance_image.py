"""Image comparisons (identical, masked, different, missing expected) and Chromium screenshots."""

from __future__ import annotations

import os

import numpy as np
import pytest
import skimage.io
import skimage.metrics
from _http_server import serve
from PIL import Image

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


def _semi_transparent():
    """Red at 20 % opacity, transparent black and opaque grey, with their look on white."""
    rgba = np.zeros((60, 80, 4), dtype=np.uint8)
    rgba[:, :40] = (200, 0, 0, 51)
    rgba[10:30, 50:70] = (100, 100, 100, 255)
    on_white = np.full((60, 80, 3), 255, dtype=np.uint8)
    on_white[:, :40] = (244, 204, 204)  # 0.2 * colour + 0.8 * 255
    on_white[10:30, 50:70] = 100
    return rgba, on_white


def test_normalize_image():
    """Transparency is composited onto white, grey becomes RGB and floats become uint8."""
    rgba, on_white = _semi_transparent()
    assert np.array_equal(normalize_image(rgba), on_white)
    grey_alpha = np.zeros((4, 5, 2), dtype=np.uint8)
    grey_alpha[:, :, 0] = 100
    grey_alpha[:, :2, 1] = 255
    normalized = normalize_image(grey_alpha)
    assert normalized.shape == (4, 5, 3)
    assert normalized[0, 0].tolist() == [100, 100, 100]
    assert normalized[0, 4].tolist() == [255, 255, 255]
    assert normalize_image(np.ones((4, 5), dtype=bool)).max() == 255
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


def test_diff_is_the_inverted_ssim_map(tmp_path):
    """The diff image is 255 - 255 * the SSIM map: black where the neighbourhood matches."""
    expected = tmp_path / "pic.expected.png"
    skimage.io.imsave(expected, _picture(), check_contrast=False)
    results = tmp_path / "results"
    with pytest.raises(AssertionError, match="SSIM"):
        check_image(str(results), _picture((0, 0, 200)), str(expected))
    diff = skimage.io.imread(results / "pic.diff.png")
    _, similarity = skimage.metrics.structural_similarity(
        _picture(), _picture((0, 0, 200)), channel_axis=2, data_range=255, win_size=7, full=True
    )
    assert np.array_equal(diff, np.clip(255 - similarity * 255, 0, 255).astype(np.uint8))
    assert diff[50, 70].tolist() == [0, 0, 0]  # far from the change
    assert diff[20, 20, 0] > 128  # red to blue: the red and blue channels changed
    assert diff[20, 20, 1] == 0  # the green channel did not
    # Unchanged pixels beside the change are in its SSIM window, unlike in a pixel difference.
    assert diff[8, 20, 0] > 0


def test_diff_of_a_tiny_image_marks_changed_pixels(tmp_path):
    """An image too small for an SSIM window fails, and its diff is white where pixels changed."""
    expected = tmp_path / "dot.expected.png"
    skimage.io.imsave(expected, np.zeros((2, 2, 3), dtype=np.uint8), check_contrast=False)
    actual = np.zeros((2, 2, 3), dtype=np.uint8)
    actual[0, 0] = (10, 0, 0)
    with pytest.raises(AssertionError, match=r"SSIM score 0\.00000 "):
        check_image(str(tmp_path / "results"), actual, str(expected), level=0.5)
    diff = skimage.io.imread(tmp_path / "results" / "dot.diff.png")
    assert diff[0, 0].tolist() == [255, 0, 0]
    assert diff[1, 1].tolist() == [0, 0, 0]


def test_rgba_file_is_composited_onto_white(tmp_path):
    """A semi-transparent RGBA file matches, at level 1.0, the RGB image it shows on white."""
    rgba, on_white = _semi_transparent()
    actual = tmp_path / "actual.png"
    Image.fromarray(rgba, "RGBA").save(actual)
    expected = tmp_path / "pic.expected.png"
    skimage.io.imsave(expected, on_white, check_contrast=False)
    check_image_file(str(tmp_path / "results"), str(actual), str(expected), level=1.0)
    # The expected image is composited too.
    Image.fromarray(rgba, "RGBA").save(expected)
    skimage.io.imsave(actual, on_white, check_contrast=False)
    check_image_file(str(tmp_path / "results"), str(actual), str(expected), level=1.0)


def test_grey_alpha_and_palette_files_are_read_as_shown(tmp_path):
    """Grey + alpha and palette (with a transparent entry) files compare as their look on white."""
    expected = tmp_path / "pic.expected.png"
    grey = np.full((60, 80), 100, dtype=np.uint8)
    alpha = np.full((60, 80), 255, dtype=np.uint8)
    alpha[:, :40] = 0
    Image.fromarray(np.stack([grey, alpha], axis=-1), "LA").save(expected)
    on_white = np.full((60, 80, 3), 100, dtype=np.uint8)
    on_white[:, :40] = 255
    check_image(str(tmp_path / "results"), on_white, str(expected), level=1.0)

    palette = Image.fromarray(np.where(alpha == 0, 0, 1).astype(np.uint8), "P")
    palette.putpalette([0, 0, 0, 100, 100, 100])
    palette.save(expected, transparency=0)
    check_image(str(tmp_path / "results"), on_white, str(expected), level=1.0)


def test_transparent_mask_pixels_do_not_mask(tmp_path):
    """Only the mask pixels that look black mask: transparent ones show white."""
    expected = tmp_path / "pic.expected.png"
    skimage.io.imsave(expected, _picture(), check_contrast=False)
    mask = np.zeros((60, 80, 4), dtype=np.uint8)  # transparent black
    mask[5:35, 5:55] = (0, 0, 0, 255)
    Image.fromarray(mask, "RGBA").save(tmp_path / "pic.mask.png")
    check_image(str(tmp_path / "results"), _picture((0, 200, 0)), str(expected))
    changed_outside = _picture()
    changed_outside[45:55, 60:70] = 0
    with pytest.raises(AssertionError, match="SSIM"):
        check_image(str(tmp_path / "results"), changed_outside, str(expected))


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
