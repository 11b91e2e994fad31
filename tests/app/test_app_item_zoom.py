"""Zoom to the item in the real app (Chromium + onnxruntime-web): the page finds the same item region as
pocketvec.runtime.item_zoom (the same boxes, pixel for pixel), embeds the photo cropped there as Python does, and
answers loose phone-shaped photos (items small and tilted in a 480 x 640 frame) as pocketvec's Recognizer, which
zooms by default; for a full-map gallery and a compact (int8, v5) one."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pocketvec.runtime.content_box import checker_locations
from pocketvec.runtime.item_zoom import ItemZoom, RowMap, box_corners, item_corners, item_region

from ..runtime.conftest import BACKGROUNDS
from ..runtime.test_item_zoom import _loose_photo
from .conftest import (
    ENROLLED,
    NOT_ENROLLED,
    check_against_python,
    choose_photo,
    copy_items,
    demo_item,
    open_app,
    zoomed,
)

JS_REGION = """async ([photo, candidates, channels, crop, height, width]) => {
  const { itemRegion } = await import("/src/item_zoom.js");
  const rows = candidates.map((c) => ({ map: Float32Array.from(c.map), locations: c.locations, corners: c.corners }));
  return itemRegion(Float32Array.from(photo), rows, channels, crop, height, width);
}"""
SIDE, CHANNELS = 12, 32
CROPS = [("scale_fill", (640, 480)), ("center_crop", (480, 640)), ("scale_fit", (640, 480))]  # photo crop, its shape
PLACED = ["doc_memman_p026", "flag_italy", "doc_microtype_p010", "flag_mali", "doc_microtype_p018", "flag_romania"]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def scene(seed: int, scale: float, angle: float, shift: tuple[float, float], noise: float) -> tuple[np.ndarray, ...]:
    """An item's map and a photo's map (SIDE x SIDE, unit rows) in which the item appears under an affine map
    (shrunk by `scale`, turned by `angle` degrees, moved by `shift` map units), each location it covers that item
    location's feature plus `noise`; every other photo location is background."""
    rng = np.random.default_rng(seed)
    item, photo = unit(rng.normal(size=(SIDE * SIDE, CHANNELS))), unit(rng.normal(size=(SIDE * SIDE, CHANNELS)))
    turn = math.radians(angle)
    inverse = np.array([[math.cos(turn), math.sin(turn)], [-math.sin(turn), math.cos(turn)]]) / scale
    for location in range(SIDE * SIDE):
        y, x = divmod(location, SIDE)
        u, v = inverse @ (np.array([x + 0.5, y + 0.5]) - shift)
        if 0 <= u < SIDE and 0 <= v < SIDE:
            seen = item[int(v) * SIDE + int(u)]
            photo[location] = unit(seen + noise * rng.normal(size=CHANNELS))
    return item, photo


# The first scenes are fitted exactly (a pure halving): box edges on whole pixels and errors of exactly one location,
# which numpy and the page compute a last bit apart (item_zoom's SLACK keeps such bits from deciding).
CASES = [  # seed, scale, angle, shift, noise
    (0, 0.5, 0.0, (3.0, 5.0), 0.0), (6, 0.5, 3.0, (3.0, 5.0), 0.1), (7, 0.45, 3.0, (3.0, 5.0), 0.1),
    (1, 0.6, 12.0, (4.0, 2.0), 0.3), (2, 0.75, -15.0, (1.5, 3.5), 0.5),
    (3, 0.55, 5.0, (5.0, 5.0), 0.8), (4, 0.9, -4.0, (0.5, 0.5), 0.4), (5, 0.4, 20.0, (6.0, 1.0), 0.2),
]


def test_the_page_finds_the_regions_python_finds(page, serve_app, scenario) -> None:
    """Synthetic maps with the item shrunk, turned and noisy: for full rows (the whole map) and compact rows (a
    content box's checkerboard), under each photo crop, the page's box is Python's, pixel for pixel."""
    page.goto(serve_app(scenario.model) + "?sw=0")
    found = 0
    for seed, scale, angle, shift, noise in CASES:
        item, photo = scene(seed, scale, angle, shift, noise)
        stranger = unit(np.random.default_rng(100 + seed).normal(size=item.shape))
        box = (1, 0, SIDE - 2, SIDE)  # a compact row's content box: a landscape item letterboxed
        kept = checker_locations(box, SIDE)
        rows = {"full": [RowMap(stranger, None, item_corners("scale_fit", SIDE)),
                         RowMap(item, None, item_corners("scale_fit", SIDE))],
                "compact": [RowMap(item[kept], kept, box_corners(np.array(box)))]}
        for kind, candidates in rows.items():
            for crop, (height, width) in CROPS:
                expected = item_region(photo, candidates, crop, height, width, ItemZoom())
                sent = [{"map": row.map.ravel().tolist(), "locations": None if row.locations is None
                         else row.locations.tolist(), "corners": row.corners.tolist()} for row in candidates]
                got = page.evaluate(JS_REGION, [photo.ravel().tolist(), sent, CHANNELS, crop, height, width])
                assert got == (None if expected is None else list(expected)), (seed, kind, crop)
                found += expected is not None
    assert found >= len(CASES) * 4, "most scenes must give a region, or the boxes compared are mostly None"


@pytest.fixture(scope="module")
def loose(small_model: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The demo items enrolled by pocketvec's Recognizer with the shipped small model into a full-map float32
    gallery and a compact int8 one, and loose phone-shaped photos (PNG: the page decodes the very pixels) of six
    of them and of an item not enrolled."""
    from pocketvec.recognizer import Recognizer
    from pocketvec.runtime.gallery.views import NO_VIEWS

    work = tmp_path_factory.mktemp("zoom")
    items = work / "items"
    copy_items(ENROLLED, items)
    galleries = {}
    for kind, dtype in [("full", "float32"), ("compact", "int8")]:
        rec = Recognizer(small_model, work / f"{kind}.pvg", dtype=dtype, views=NO_VIEWS, text=False)
        rec.enroll(items)
        assert rec.gallery.compact == (kind == "compact")
        galleries[kind] = rec.save()
    backgrounds = sorted(BACKGROUNDS.glob("*.jpg"))
    photos = []
    for i, name in enumerate([*PLACED, NOT_ENROLLED[0]]):
        array, _ = _loose_photo(demo_item(name), backgrounds[i % len(backgrounds)], 0.4 + 0.04 * (i % 6),
                                (0.1 + 0.05 * (i % 6), 0.15 + 0.08 * (i % 6)), (-12, 8, 0, 15, -6, 10, 4)[i])
        photos.append(work / f"{name}_loose.png")
        Image.fromarray(array).save(photos[-1])
    return SimpleNamespace(galleries=galleries, photos=photos)


@pytest.mark.parametrize("kind", ["full", "compact"])
def test_the_page_zooms_loose_photos_as_the_recognizer(page, serve_app, small_model: Path, loose, kind: str) -> None:
    """The page's regions are Python's; its zoomed embeddings, top-3, scores and answers are the Recognizer's (zoom
    on, its default); zooming moves the scores; with ?zoom=0 the page answers from the first pass, as
    Recognizer(item_zoom=False)."""
    from pocketvec.recognizer import Recognizer
    from pocketvec.runtime.gallery.views import NO_VIEWS
    from pocketvec.runtime.images import load_image
    from pocketvec.runtime.matcher import Matcher
    from pocketvec.runtime.zoomed_photos import item_regions

    rec = Recognizer(small_model, loose.galleries[kind], views=NO_VIEWS, text=False)
    engine, gallery, photos = rec.engine, rec.gallery, loose.photos
    expected = rec.match_many(photos)
    first = engine.embed_all(photos, query=True)
    regions = item_regions(engine, Matcher.for_model(engine.metadata, gallery), first,
                           [load_image(p) for p in photos], ItemZoom())
    assert sum(r is not None for r in regions) >= len(photos) - 2, regions  # a real model locates most items

    open_app(page, serve_app(small_model, loose.galleries[kind]))
    results = [choose_photo(page, p) for p in photos]
    assert [r["region"] for r in results] == [None if r is None else list(r) for r in regions]
    rerank = engine.metadata.local_rerank
    check_against_python(results, zoomed(engine, gallery, first, photos), gallery, rec.rule, rerank)
    for result, match in zip(results, expected, strict=True):  # the Recognizer's answers, as a user sees them
        assert [t["label"] for t in result["top"]] == [c.label for c in match.top], result["name"]
        np.testing.assert_allclose([t["score"] for t in result["top"]], [c.score for c in match.top], atol=1e-6)
        assert (result["label"] or "unknown") == match.answer, result["name"]

    plain = Recognizer(small_model, loose.galleries[kind], views=NO_VIEWS, text=False, item_zoom=False)
    unzoomed = plain.match_many(photos)
    moved = [abs(a.score - b.score) for a, b in zip(expected, unzoomed, strict=True)]
    assert max(moved) > 0.01, moved  # zooming changes what the page answers: the port is exercised

    page.goto(page.url.split("?")[0] + "?sw=0&zoom=0")
    page.evaluate("() => window.pocketvecApp.ready")
    results = [choose_photo(page, p) for p in photos]
    assert all(r["region"] is None for r in results)
    check_against_python(results, first, gallery, rec.rule, rerank)
