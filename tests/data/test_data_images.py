"""Robust image loading: every odd mode to RGB, EXIF rotation, broken and oversized files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pocketvec.data.assets import demo_items_dir
from pocketvec.errors import ImageLoadError
from pocketvec.runtime.images import load_image, probe_image

FLAG = demo_items_dir() / "flag_italy.png"  # green | white | red, 450x300


@pytest.fixture(scope="module")
def flag() -> np.ndarray:
    return np.asarray(Image.open(FLAG).convert("RGB"))


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize(("mode", "suffix"), [("P", "png"), ("L", "png"), ("RGB", "jpg"), ("CMYK", "jpg"),
                                              ("CMYK", "tif"), ("1", "png"), ("RGB", "webp")])
def test_modes_become_rgb(tmp_path, flag, mode, suffix):
    source = Image.fromarray(flag).convert(mode)
    path = _save(source, tmp_path / f"flag_{mode}.{suffix}")
    with Image.open(path) as check:
        assert check.mode == mode  # the file really holds that mode
    out = load_image(path)
    assert out.shape == flag.shape and out.dtype == np.uint8
    expected = np.asarray(source.convert("RGB")).astype(int)
    tolerance = 12 if suffix == "jpg" else 2
    assert np.abs(out.astype(int) - expected).mean() < tolerance


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_goes_on_white(tmp_path, flag, mode):
    rgba = np.dstack([flag, np.full(flag.shape[:2], 255, np.uint8)])
    rgba[:, :100, 3] = 0  # left part fully transparent (its colour is green underneath)
    rgba[:, 100:150, 3] = 128  # half transparent green
    image = Image.fromarray(rgba, "RGBA")
    image = image.convert("LA") if mode == "LA" else image
    path = _save(image, tmp_path / f"alpha_{mode}.png")
    with Image.open(path) as check:
        assert check.mode == mode
    out = load_image(path).astype(int)
    assert (out[:, :100] == 255).all()  # transparent: white, not green or black
    opaque = np.asarray(image.convert("RGBA"))[:, 200, :3].astype(int)
    assert np.abs(out[:, 200] - opaque).max() <= 1  # opaque pixels untouched
    blend = (np.asarray(image.convert("RGBA"))[:, 120, :3].astype(int) * 128 + 255 * 127) / 255
    assert np.abs(out[:, 120] - blend).max() <= 2


def test_palette_with_transparent_index(tmp_path, flag):
    image = Image.fromarray(flag).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    green_index = image.getpixel((0, 0))
    path = _save(image, tmp_path / "p_trns.png", transparency=green_index)
    out = load_image(path)
    assert (out[:, :100] == 255).all() and out[:, 350:].mean() < 200


def test_sixteen_bit_greyscale_uses_the_full_range(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    path = _save(Image.fromarray(ramp), tmp_path / "ramp16.png")
    with Image.open(path) as check:
        assert check.mode == "I;16"
    out = load_image(path)
    assert out.shape == (16, 256, 3)
    np.testing.assert_allclose(out[0, :, 0], np.linspace(0, 255, 256), atol=1)
    dark = _save(Image.fromarray((ramp // 64).astype(np.uint16)), tmp_path / "dark16.png")
    assert load_image(dark).max() <= 5  # a dark 16-bit image stays dark (no auto-stretch)
    ints = _save(Image.fromarray((ramp // 256).astype(np.int32)), tmp_path / "ramp32.tif")
    with Image.open(ints) as check:
        assert check.mode == "I"
    np.testing.assert_allclose(load_image(ints)[0, :, 0], np.arange(256), atol=1)


@pytest.mark.parametrize(("orientation", "undo"), [(3, 2), (6, 1), (8, 3)])
def test_exif_orientation_is_applied(tmp_path, flag, orientation, undo):
    stored = np.rot90(flag, k=undo)  # what a camera stores before tagging the rotation
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(Image.fromarray(np.ascontiguousarray(stored)), tmp_path / f"o{orientation}.jpg",
                 exif=exif.tobytes(), quality=95)
    out = load_image(path)
    assert out.shape == flag.shape
    assert np.abs(out.astype(int) - flag.astype(int)).mean() < 4


def test_broken_files_name_the_file(tmp_path, flag):
    buffer = io.BytesIO()
    Image.fromarray(flag).save(buffer, format="JPEG", quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("definitely not a PNG\n")
    cases = {truncated: "truncated", empty: "empty", text: "not an image", tmp_path / "gone.jpg": "no such file"}
    for path, problem in cases.items():
        with pytest.raises(ImageLoadError, match=problem) as info:
            load_image(path)
        assert info.value.path == path and str(path) in str(info.value)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims the given size, with one tiny (invalid) data chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + data


def test_huge_dimensions_are_refused(tmp_path):
    claimed = tmp_path / "bomb.png"
    claimed.write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageLoadError, match="too large") as info:
        load_image(claimed)
    assert "bomb.png" in str(info.value)
    with pytest.raises(ImageLoadError, match="too large"):
        probe_image(claimed)
    # just above Pillow's limit (where Pillow itself only warns): a real, cheap 1-bit image
    side = int((Image.MAX_IMAGE_PIXELS * 1.2) ** 0.5)
    bitmap = _save(Image.new("1", (side, side)), tmp_path / "big_bitmap.png")
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(bitmap)


def test_max_side_shrinks_while_decoding(tmp_path, flag):
    path = _save(Image.fromarray(np.tile(flag, (4, 4, 1))), tmp_path / "big.jpg", quality=90)  # 1800x1200
    out = load_image(path, max_side=300)
    assert max(out.shape[:2]) == 300 and out.shape[1] == 300
    assert probe_image(path) == (1800, 1200)
