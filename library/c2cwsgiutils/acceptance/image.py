"""Compare images and browser screenshots with expected ones, for acceptance tests.

Expected images are ``<name>.expected.png``; an optional ``<name>.mask.png`` next to one masks the
regions that change from run to run (its black pixels). Transparent images are composited onto
white, as a browser shows them. The comparison uses the structural similarity index (SSIM, from
scikit-image): 1.0 means identical. On failure the helpers write ``<name>.actual-masked.png`` and
``<name>.diff.png`` (the inverted SSIM map: black where the images match, brighter where they
differ) in the result folder.

Screenshots are taken by the system's headless Chromium (``CHROMIUM_EXECUTABLE``, by default
``/usr/bin/chromium``) through Playwright's Python API; no browser is downloaded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from c2cwsgiutils._extras import require

__all__ = ["check_image", "check_image_file", "check_screenshot", "normalize_image"]

CHROMIUM_EXECUTABLE = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
_MEDIA_FEATURES = {
    "prefers-color-scheme": "color_scheme",
    "prefers-reduced-motion": "reduced_motion",
    "forced-colors": "forced_colors",
}
Image = npt.NDArray[np.uint8]


def _skimage_io() -> Any:
    return require("skimage.io", "test_images", "image comparison")


def normalize_image(img: npt.NDArray[Any]) -> Image:
    """Return the image as RGB ``uint8``: composited onto white, grey expanded, scaled to 0-255.

    Args:
        img: A grey (2-D), grey + alpha, RGB or RGBA image; boolean, integer (``uint16`` is scaled
            down) or floating point (0-1 when no value exceeds 1, else 0-255).

    Returns:
        The RGB image; a pixel of opacity ``a`` becomes ``colour * a + white * (1 - a)``.
    """
    values = _to_0_255(img)
    if values.ndim == 2:  # noqa: PLR2004 # a grey image has no channel axis
        values = values[:, :, np.newaxis]
    if values.shape[2] in (2, 4):  # the last channel is the opacity (grey + alpha, RGBA)
        # Dropping the alpha channel would show the colour that transparent pixels happen to hold
        # (often black); composited onto white they look as they do in a browser or image viewer.
        alpha = values[:, :, -1:] / 255
        values = values[:, :, :-1] * alpha + 255 * (1 - alpha)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    return np.ascontiguousarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def _to_0_255(img: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    values = img.astype(np.float64)
    if img.dtype == np.bool_ or (np.issubdtype(img.dtype, np.floating) and values.max() <= 1.0):
        values *= 255
    elif img.dtype == np.uint16:
        values /= 257
    return np.clip(values, 0, 255)


def _read_image(filename: str) -> npt.NDArray[Any]:
    pil_image = require("PIL.Image", "test_images", "image comparison")
    with pil_image.open(filename) as img:
        # Not skimage.io.imread: through imageio it garbles grey + alpha PNGs and drops the
        # transparency of palette ones. Pillow converts the other modes, keeping their transparency.
        if img.mode in ("RGB", "RGBA", "L") and "transparency" not in img.info:
            return np.asarray(img)
        if img.mode.startswith("I;16") or img.mode == "F":  # 16-bit grey, float grey: keep the range
            return np.asarray(img)
        if img.mode == "I":  # 32-bit grey, as older Pillow versions read 16-bit PNGs
            grey: npt.NDArray[np.uint16] = np.clip(np.asarray(img), 0, 65535).astype(np.uint16)
            return grey
        has_alpha = "A" in img.getbands() or "transparency" in img.info
        return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))


def _dominant_colour(img: Image) -> Image:
    colours, counts = np.unique(img.reshape(-1, img.shape[2]), axis=0, return_counts=True)
    result: Image = colours[int(np.argmax(counts))]
    return result


def _apply_mask(img: Image, mask: Image) -> Image:
    if mask.shape[:2] != img.shape[:2]:
        raise AssertionError(f"The mask size {mask.shape[:2]} differs from the image size {img.shape[:2]}")
    masked = img.copy()
    masked[np.all(mask == 0, axis=2)] = _dominant_colour(img)
    return masked


def _names(result_folder: str, expected_filename: str) -> tuple[str, str]:
    base = os.path.basename(expected_filename)
    name = base.removesuffix(".png").removesuffix(".expected")
    mask = os.path.join(os.path.dirname(expected_filename), f"{name}.mask.png")
    return os.path.join(result_folder, name), mask


def _ssim(metrics: Any, expected: Image, actual: Image) -> tuple[float, Image]:
    win_size = min(7, *actual.shape[:2])
    win_size -= 1 - win_size % 2  # must be odd
    if win_size < 3:  # noqa: PLR2004 # the smallest SSIM window
        # No SSIM for an image under 3 pixels wide: it fails, and the diff marks the changed pixels.
        return 0.0, np.where(expected == actual, 0, 255).astype(np.uint8)
    score, similarity = metrics.structural_similarity(
        expected, actual, channel_axis=2, data_range=255, win_size=win_size, full=True
    )
    # The map is 1 where the images match and goes down to -1 (anti-correlated): inverted so that
    # the differences stand out on black, and clipped as values under 0 would overflow uint8.
    diff: Image = np.clip(255 - similarity * 255, 0, 255).astype(np.uint8)
    return float(score), diff


def check_image(
    result_folder: str,
    image_to_check: npt.NDArray[Any],
    expected_filename: str,
    level: float = 1.0,
    generate_expected_image: bool = False,
    use_mask: bool = True,
) -> None:
    """Assert that an image looks like the expected one.

    Args:
        result_folder: Where the actual-masked and diff images are written on failure.
        image_to_check: The image (as read by ``skimage.io.imread``); see :func:`normalize_image`.
        expected_filename: The expected image, ``<name>.expected.png``.
        level: The minimal SSIM score (1.0: identical).
        generate_expected_image: Write the image as the expected one instead of comparing.
        use_mask: Apply ``<name>.mask.png`` when it exists.

    Raises:
        AssertionError: When the images differ, or the expected image was missing (it is then
            written from the image to check so that a maintainer can review and commit it).
    """
    io = _skimage_io()
    metrics = require("skimage.metrics", "test_images", "image comparison")

    os.makedirs(result_folder, exist_ok=True)
    actual = normalize_image(image_to_check)
    result_base, mask_filename = _names(result_folder, expected_filename)
    if generate_expected_image or not os.path.exists(expected_filename):
        io.imsave(expected_filename, actual, check_contrast=False)
        if generate_expected_image:
            return
        raise AssertionError(f"The expected image {expected_filename} was missing: written, check it")
    expected = normalize_image(_read_image(expected_filename))
    if use_mask and os.path.exists(mask_filename):
        # A transparent mask pixel shows as white, so it only masks where it looks black.
        mask = normalize_image(_read_image(mask_filename))
        actual, expected = _apply_mask(actual, mask), _apply_mask(expected, mask)
    if actual.shape != expected.shape:
        io.imsave(f"{result_base}.actual-masked.png", actual, check_contrast=False)
        raise AssertionError(
            f"The image size {actual.shape[:2]} differs from the expected {expected.shape[:2]} "
            f"({expected_filename}); see {result_base}.actual-masked.png"
        )
    if np.array_equal(actual, expected):
        return
    score, diff = _ssim(metrics, expected, actual)
    if score < level:
        io.imsave(f"{result_base}.actual-masked.png", actual, check_contrast=False)
        io.imsave(f"{result_base}.diff.png", diff, check_contrast=False)
        raise AssertionError(
            f"The image differs from {expected_filename}: SSIM score {score:.5f} < {level}; "
            f"see {result_base}.actual-masked.png and {result_base}.diff.png"
        )


def check_image_file(
    result_folder: str,
    file: str,
    expected: str,
    level: float = 1.0,
    generate_expected_image: bool = False,
    use_mask: bool = True,
) -> None:
    """Assert that the image file ``file`` looks like the expected image file (see :func:`check_image`)."""
    check_image(result_folder, _read_image(file), expected, level, generate_expected_image, use_mask)


def _media_options(media: Sequence[Mapping[str, str]] | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for feature in media or ():
        name, value = feature["name"], feature["value"]
        if name == "media":
            options["media"] = value
        elif name in _MEDIA_FEATURES:
            options[_MEDIA_FEATURES[name]] = value
        else:
            raise ValueError(
                f"Unsupported media feature {name!r}; supported: media, {', '.join(_MEDIA_FEATURES)}"
            )
    return options


def take_screenshot(
    url: str,
    filename: str,
    width: int = 800,
    height: int = 600,
    sleep: int = 100,
    headers: Mapping[str, str] | None = None,
    media: Sequence[Mapping[str, str]] | None = None,
) -> None:
    """Load ``url`` in headless Chromium and write a PNG screenshot of the viewport to ``filename``.

    Args:
        url: The page.
        filename: The PNG file to write.
        width: The viewport width.
        height: The viewport height.
        sleep: Milliseconds to wait after the page has loaded.
        headers: Extra HTTP headers.
        media: Emulated media features, e.g. ``[{"name": "prefers-color-scheme", "value": "dark"}]``.
    """
    require("playwright", "test_images", "screenshots")
    from playwright.sync_api import sync_playwright

    emulation = _media_options(media)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM_EXECUTABLE,
            headless=True,
            args=list(CHROMIUM_ARGS),
        )
        try:
            context = browser.new_context(
                viewport={"width": width, "height": height}, extra_http_headers=dict(headers or {})
            )
            page = context.new_page()
            if emulation:
                page.emulate_media(**emulation)
            page.goto(url, wait_until="load", timeout=60_000)
            time.sleep(sleep / 1000)
            page.screenshot(path=filename)
        finally:
            browser.close()


def check_screenshot(
    url: str,
    result_folder: str,
    expected_filename: str,
    width: int = 800,
    height: int = 600,
    sleep: int = 100,
    headers: Mapping[str, str] | None = None,
    media: Sequence[Mapping[str, str]] | None = None,
    level: float = 1.0,
    generate_expected_image: bool = False,
    use_mask: bool = True,
) -> None:
    """Take a screenshot of ``url`` as ``<name>.actual.png`` and check it (see :func:`check_image`)."""
    os.makedirs(result_folder, exist_ok=True)
    result_base, _ = _names(result_folder, expected_filename)
    actual = f"{result_base}.actual.png"
    take_screenshot(url, actual, width, height, sleep, headers, media)
    check_image_file(result_folder, actual, expected_filename, level, generate_expected_image, use_mask)
