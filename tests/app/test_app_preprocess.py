"""The browser decodes and preprocesses real images to exactly the pixels the Python runtime makes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pocketvec.runtime.images import load_image
from pocketvec.runtime.preprocess import CROP_MODES, RESAMPLE_FILTERS, PreprocessSpec, preprocess

from .conftest import b64, demo_item, from_b64

JS_DECODE_AND_PREPROCESS = """async ([data, type, specs]) => {
  const { decodeImage } = await import("/src/decode.js");
  const { preprocess } = await import("/src/preprocess.js");
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const img = await decodeImage(new Blob([bytes], { type }));
  const b64 = (a) => btoa(Array.from(a, (v) => String.fromCharCode(v)).join(""));
  return { width: img.width, height: img.height, decoded: b64(img.data),
           outputs: specs.map((s) => b64(preprocess(img, s).data)) };
}"""


def run_js(page, data: bytes, mime: str, specs: list[PreprocessSpec]) -> tuple[np.ndarray, list[np.ndarray]]:
    out = page.evaluate(JS_DECODE_AND_PREPROCESS, [b64(data), mime, [s.to_dict() for s in specs]])
    decoded = from_b64(out["decoded"], (out["height"], out["width"], 3))
    return decoded, [from_b64(o, (s.input_size, s.input_size, 3)) for o, s in zip(out["outputs"], specs, strict=True)]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


ALL_SPECS = [PreprocessSpec(input_size=size, crop_mode=crop, resample=filt)
             for crop in CROP_MODES for filt in RESAMPLE_FILTERS for size in (128, 224)]


@pytest.fixture()
def app_page(page, serve_app):
    page.goto(serve_app() + "?sw=0")
    return page


@pytest.mark.parametrize("name", ["flag_romania", "doc_memman_p026", "doc_microtype_p010"])
def test_js_preprocessing_equals_python_on_real_pngs(app_page, name: str) -> None:
    """Every crop mode x resize filter, shrinking real PNGs (RGB and palette): identical pixels."""
    path = demo_item(name)
    decoded, outputs = run_js(app_page, path.read_bytes(), "image/png", ALL_SPECS)
    python_image = load_image(path)
    assert np.array_equal(decoded, python_image), "the browser's PNG decode differs from Pillow's"
    for spec, js in zip(ALL_SPECS, outputs, strict=True):
        expected = preprocess(python_image, spec)
        diff = np.abs(js.astype(int) - expected.astype(int))
        assert diff.max() == 0, f"{name} {spec}: {np.count_nonzero(diff)} values differ (max {diff.max()})"


def test_js_preprocessing_upscales_and_handles_alpha_like_python(app_page, tmp_path: Path) -> None:
    """A small crop of a real page (upscaled to the input) and a half-transparent real image."""
    page_image = Image.open(demo_item("doc_microtype_p018")).convert("RGB")
    small = page_image.crop((40, 60, 101, 97))  # 61 x 37: upscaled in every mode
    rgba = Image.open(demo_item("flag_italy")).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))  # real colours, every alpha level
    for image in (small, rgba):
        path = tmp_path / f"{image.mode}.png"
        image.save(path)
        decoded, outputs = run_js(app_page, path.read_bytes(), "image/png", ALL_SPECS)
        python_image = load_image(path)
        if image.mode == "RGBA":  # canvas keeps premultiplied alpha: documented, measured here
            assert np.abs(decoded.astype(int) - python_image.astype(int)).max() <= 1
            python_image = decoded
        else:
            assert np.array_equal(decoded, python_image)
        for spec, js in zip(ALL_SPECS, outputs, strict=True):
            assert np.array_equal(js, preprocess(python_image, spec)), f"{image.mode} {spec}"


def test_exif_orientation_applied_like_python(app_page, tmp_path: Path) -> None:
    """A JPEG whose EXIF says 'rotate 90°': upright in both; JPEG decoders may differ by a level."""
    image = Image.open(demo_item("flag_chad")).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    path = tmp_path / "rotated.jpg"
    image.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    decoded, _ = run_js(app_page, path.read_bytes(), "image/jpeg", [])
    python_image = load_image(path)
    assert decoded.shape == python_image.shape == (450, 300, 3)
    diff = np.abs(decoded.astype(int) - python_image.astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 8, f"JPEG decode differs: mean {diff.mean():.3f}, max {diff.max()}"
