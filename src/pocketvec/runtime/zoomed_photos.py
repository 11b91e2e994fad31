"""Photos embedded again from their item's region (pocketvec.runtime.item_zoom), between embedding and matching:
every runtime path that answers photos (`Recognizer.match` and `calibrate`, `pocketvec match`, `eval`,
`calibrate`, `bench`; on by default, `item_zoom=False` / `--no-item-zoom` leave it out) calls `zoom_to_items` on
what the engine embedded, so the accept rule is calibrated on the scores it is applied to. The regions go on to
text verification, which reads only them (pocketvec.runtime.printed_text.PhotoTexts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import numpy as np

from pocketvec.errors import ImageLoadError
from pocketvec.runtime.content_box import checker_locations
from pocketvec.runtime.engines.base import Engine, ImageLike
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.image_bounds import check_bounds
from pocketvec.runtime.images import load_image
from pocketvec.runtime.item_zoom import ItemZoom, PhotoRegion, RowMap, box_corners, item_corners, item_region
from pocketvec.runtime.matcher import Matcher
from pocketvec.runtime.preprocess import PreprocessSpec

__all__ = ["Zoomed", "candidate_maps", "item_regions", "region_crop", "zoom_to_items"]

CHUNK = 32  # photos held decoded at once
Found = TypeVar("Found")  # an EmbedResult or LabelledEmbeddings: embeddings, locals and the rest kept


class Zoomed(NamedTuple, Generic[Found]):
    """What the matcher answers from: the photos embedded (each zoomed one from its item's region), and per photo
    the region it was embedded from (None: the whole photo; all None when not zoomed)."""

    found: Found
    regions: list[PhotoRegion | None]


def region_crop(array: np.ndarray, region: tuple[int, int, int, int] | None, spec: PreprocessSpec
                ) -> np.ndarray | None:
    """The photo `array` cropped to its item's `region` (top, left, bottom, right), or None: no region, or one
    the model cannot take (its shape beyond the bounds every image is held to, under each of `spec`'s query
    crops), so that the photo keeps its first pass."""
    if region is None:
        return None
    top, left, bottom, right = region
    crop = np.ascontiguousarray(array[top:bottom, left:right])
    try:
        for crop_spec in spec.query_specs():
            check_bounds(crop.shape[1], crop.shape[0], crop_spec, "<item region>")
    except ImageLoadError:
        return None
    return crop


def candidate_maps(matcher: Matcher, rows: np.ndarray, side: int, item_crop: str) -> list[RowMap]:
    """The rows' local maps as the matcher scores them (compact rows decoded: their checkerboard of the content
    box), with the item's corners: the content box where the row keeps one, else the whole map."""
    maps = matcher.scorer.maps[rows] if len(rows) else []
    if not matcher.gallery.compact:
        return [RowMap(np.asarray(m), None, item_corners(item_crop, side)) for m in maps]
    boxes = [matcher.gallery.locals.row(r)[0] for r in rows]  # type: ignore[union-attr]
    return [RowMap(np.asarray(m), checker_locations(box, side), box_corners(box))
            for m, box in zip(maps, boxes, strict=True)]


def item_regions(engine: Engine, matcher: Matcher, found: Found, arrays: Sequence[np.ndarray], zoom: ItemZoom
                 ) -> list[tuple[int, int, int, int] | None]:
    """Per photo (`arrays`, RGB, as embedded in `found`), its item's pixel region (top, left, bottom, right) or
    None: from the first pass's map and its re-rank candidates' rows in `matcher`'s gallery
    (pocketvec.runtime.item_zoom)."""
    spec, rerank = engine.metadata.preprocess, engine.metadata.local_rerank
    side = math.isqrt(rerank.locations)  # type: ignore[union-attr]
    maps = found.locals  # type: ignore[attr-defined]
    candidates = matcher.candidate_rows(found.embeddings, maps)  # type: ignore[attr-defined]
    return [item_region(maps[q, : side * side], candidate_maps(matcher, rows, side, spec.crop_mode),
                        spec.query_crops[0], *array.shape[:2], zoom)
            for q, (array, rows) in enumerate(zip(arrays, candidates, strict=True))]


def zoom_to_items(engine: Engine, gallery: Gallery, found: Found, images: Sequence[ImageLike],
                  zoom: ItemZoom | None) -> Zoomed[Found]:
    """`found` (the photos `images` embedded with query=True, row for row) with each photo whose item region is
    found embedded again from that region, and the regions; unchanged (no regions) when `zoom` is None or the
    model has no local re-rank."""
    embeddings, maps = found.embeddings, found.locals  # type: ignore[attr-defined]
    regions: list[PhotoRegion | None] = [None] * len(embeddings)
    if zoom is None or maps is None or not len(embeddings) or gallery.count == 0:
        return Zoomed(found, regions)
    spec, matcher = engine.metadata.preprocess, Matcher.for_model(engine.metadata, gallery)
    embeddings, maps = embeddings.copy(), maps.copy()
    for start in range(0, len(embeddings), CHUNK):
        part = range(start, min(start + CHUNK, len(embeddings)))
        arrays = [load_image(images[q]) if isinstance(images[q], (str, Path)) else np.asarray(images[q]) for q in part]
        chunk = replace(found, embeddings=embeddings[part.start : part.stop], locals=maps[part.start : part.stop])
        kept = []
        for q, array, region in zip(part, arrays, item_regions(engine, matcher, chunk, arrays, zoom), strict=True):
            crop = region_crop(array, region, spec)
            if crop is not None:
                kept.append((q, crop))
                regions[q] = PhotoRegion(region, *array.shape[:2])  # type: ignore[arg-type]
        if kept:
            second = engine.embed_all([crop for _, crop in kept], query=True)
            rows = [q for q, _ in kept]
            embeddings[rows], maps[rows] = second.embeddings, second.locals
    return Zoomed(replace(found, embeddings=embeddings, locals=maps), regions)  # type: ignore[type-var]
