"""Zoom to the item: the region fitted from the local maps is where the item is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pocketvec.errors import ConfigError
from pocketvec.runtime.item_zoom import (
    ItemZoom,
    RowMap,
    fit_item_corners,
    item_corners,
    item_region,
    photo_grid_to_pixels,
)
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess

SIDE = 14


def _unit(rng: np.random.Generator, n: int, channels: int = 32) -> np.ndarray:
    v = rng.standard_normal((n, channels))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _item_and_photo(rng: np.random.Generator, scale: int, left: int, top: int) -> tuple[np.ndarray, np.ndarray]:
    """An item's map, and a photo's map in which the item appears shrunk by `scale` with its corner at
    (left, top) map locations; every other photo location is background."""
    item = _unit(rng, SIDE * SIDE)
    photo = _unit(rng, SIDE * SIDE)
    for y in range(SIDE // scale):
        for x in range(SIDE // scale):
            # the photo location sees the item location at the same relative place (its centre)
            iy, ix = y * scale + scale // 2, x * scale + scale // 2
            photo[(top + y) * SIDE + left + x] = item[iy * SIDE + ix]
    return item, photo


def test_the_fitted_corners_are_where_the_item_lies() -> None:
    item, photo = _item_and_photo(np.random.default_rng(0), 2, left=3, top=5)
    corners = fit_item_corners(photo, item, item_corners("center_crop", SIDE), ItemZoom())
    assert corners is not None
    np.testing.assert_allclose(corners.min(axis=0), [3, 5], atol=0.3)
    np.testing.assert_allclose(corners.max(axis=0), [10, 12], atol=0.3)


def test_no_region_in_a_photo_without_the_item() -> None:
    rng = np.random.default_rng(1)
    item, photo = _unit(rng, SIDE * SIDE), _unit(rng, SIDE * SIDE)
    assert fit_item_corners(photo, item, item_corners("center_crop", SIDE), ItemZoom()) is None
    assert item_region(photo, [RowMap(item, None, item_corners("center_crop", SIDE))], "scale_fill", 640, 480,
                       ItemZoom()) is None


def test_the_region_is_in_the_photos_pixels_and_the_first_candidate_that_fits_gives_it() -> None:
    rng = np.random.default_rng(2)
    item, photo = _item_and_photo(rng, 2, left=3, top=5)
    stranger = _unit(rng, SIDE * SIDE)
    corners = item_corners("center_crop", SIDE)
    region = item_region(photo, [RowMap(stranger, None, corners), RowMap(item, None, corners)], "scale_fill", 700, 420,
                         ItemZoom())
    assert region is not None
    top, left, bottom, right = region
    assert abs(top - 5 * 700 / SIDE) <= 700 / SIDE * 0.3 and abs(bottom - 12 * 700 / SIDE) <= 700 / SIDE * 0.3
    assert abs(left - 3 * 420 / SIDE) <= 420 / SIDE * 0.3 and abs(right - 10 * 420 / SIDE) <= 420 / SIDE * 0.3


@pytest.mark.parametrize("crop", ["scale_fill", "center_crop", "scale_fit"])
def test_map_units_map_to_the_pixels_the_crop_put_there(crop: str) -> None:
    """A bright pixel block in the photo lands in the model input where photo_grid_to_pixels says it comes from."""
    height, width, size = 300, 500, 224
    photo = np.zeros((height, width, 3), np.uint8)
    photo[140:160, 240:260] = 255
    model_input = preprocess(photo, PreprocessSpec(input_size=size, crop_mode=crop))
    ys, xs = np.nonzero(model_input[..., 0] > 127)
    centre = np.array([[xs.mean() + 0.5, ys.mean() + 0.5]]) * (SIDE / size)  # in map units
    np.testing.assert_allclose(photo_grid_to_pixels(centre, SIDE, crop, height, width)[0], [250, 150], atol=2)


def test_scale_fit_items_are_letterboxed_in_their_map() -> None:
    corners = item_corners("scale_fit", SIDE, height=100, width=200)
    np.testing.assert_allclose(corners.min(axis=0), [0, 3.5], atol=1e-9)
    np.testing.assert_allclose(corners.max(axis=0), [14, 10.5], atol=1e-9)
    np.testing.assert_allclose(item_corners("scale_fit", SIDE).max(axis=0), [14, 14])  # no size: the whole map


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="inliers"):
        ItemZoom(inliers=2)
    with pytest.raises(ConfigError, match="tolerance"):
        ItemZoom(tolerance=0)


@pytest.fixture(scope="module")
def shipped_small(tmp_path_factory: pytest.TempPathFactory, small_with_codebook: Path) -> Path:
    """The shipped small student (with a local codebook) exported to ONNX with its local re-rank: a trained model
    whose maps match."""
    from pocketvec.export.onnx_export import export_onnx

    return export_onnx(small_with_codebook, tmp_path_factory.mktemp("small") / "small.onnx")


def _loose_photo(item: Path, background: Path, fill: float, corner: tuple[float, float], angle: float
                 ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 480 x 640 portrait photo: the item at `fill` of the frame's width, turned by `angle`, its box's top-left
    at `corner` (fractions of the frame), on a background photo; and the box (top, left, bottom, right) of the item
    in the frame."""
    from PIL import Image

    frame = Image.open(background).convert("RGB").resize((480, 640))
    image = Image.open(item).convert("RGB")
    width = round(480 * fill)
    image = image.resize((width, round(image.height * width / image.width))).rotate(angle, expand=True,
                                                                                    fillcolor=(0, 0, 0))
    mask = image.convert("L").point(lambda v: 255 if v > 0 else 0)
    left, top = round(corner[0] * 480), round(corner[1] * 640)
    frame.paste(image, (left, top), mask)
    return np.asarray(frame), (top, left, min(640, top + image.height), min(480, left + image.width))


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _inside(box: tuple[int, int, int, int], region: tuple[int, int, int, int]) -> float:
    """The share of `box` inside `region`."""
    inter = max(0, min(box[2], region[2]) - max(box[0], region[0])) * max(0, min(box[3], region[3]) - max(box[1],
                                                                                                          region[1]))
    return inter / _area(box)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


def test_zooming_finds_a_small_item_and_brings_the_photo_closer_to_it(shipped_small: Path, items_dir: Path,
                                                                      photo_paths: list[Path]) -> None:
    """Real items placed small and tilted in phone-shaped photos: in an int8 gallery (compact rows: each keeps its
    item's content box) the region found from the first pass's map covers each item's true box, and each photo
    embedded from its region is nearer its item's row than the whole photo was (the Recognizer's answers and their
    scores with item_zoom, its default, and without)."""
    from pocketvec.recognizer import Recognizer
    from pocketvec.runtime.gallery.views import GalleryViews
    from pocketvec.runtime.matcher import Matcher
    from pocketvec.runtime.zoomed_photos import item_regions

    plain = Recognizer(shipped_small, views=GalleryViews(count=0), text=False, dtype="int8", item_zoom=False)
    plain.enroll(items_dir)
    assert plain.gallery.compact
    zoomed = Recognizer(shipped_small, views=GalleryViews(count=0), text=False)  # zooms by default
    zoomed.gallery = plain.gallery
    items = sorted(items_dir.glob("*.png"))[:6]
    placed = [_loose_photo(item, photo_paths[i % len(photo_paths)], 0.4 + 0.04 * i, (0.1 + 0.05 * i, 0.15 + 0.08 * i),
                           (-12, 8, 0, 15, -6, 10)[i]) for i, item in enumerate(items)]
    photos = [photo for photo, _ in placed]
    found = plain.engine.embed_all(photos, query=True)
    regions = item_regions(plain.engine, Matcher.for_model(plain.engine.metadata, plain.gallery), found, photos,
                           ItemZoom())
    assert all(region is not None for region in regions)
    boxes = [box for _, box in placed]
    # the region keeps the item (at most 15 % of its box cut), is well inside the frame (a third of it or more
    # left out), and on the whole fits the item (median IoU; the text page's repeated lines widen its fit)
    kept = [_inside(box, region) for region, box in zip(regions, boxes, strict=True)]
    assert min(kept) >= 0.85, kept
    assert max(_area(region) / (480 * 640) for region in regions) <= 2 / 3
    assert np.median([_iou(region, box) for region, box in zip(regions, boxes, strict=True)]) >= 0.6
    before, after = plain.match_many(photos, top_k=100), zoomed.match_many(photos, top_k=100)
    for item, first, second in zip(items, before, after, strict=True):
        score = {c.label: c.score for c in first.top}, {c.label: c.score for c in second.top}
        assert second.answer == item.stem
        assert score[1][item.stem] > score[0].get(item.stem, -1.0)
