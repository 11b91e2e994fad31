"""Zoom to the item: find where the item lies in a photo from the local maps, and embed that region again.

A phone photo frames its item loosely (40-95 % of the frame, tilted, in perspective), and the photos' crop
squeezes the whole frame into the model's input: a small item keeps few pixels. After the first pass, each
of the re-rank's candidates (best first) is matched to the photo location by location: a row location and a
photo location that are each other's best cosine form a correspondence, and an affine map from the item's
map grid to the photo's is fitted to them (RANSAC over triples of the strongest correspondences, in a fixed
order: the same box on every platform). The item's corners, so mapped, bound its region in the photo; the
photo cropped there is embedded again, as photos are (the model's query crops), and answered from that.
When no candidate gives `inliers` correspondences that agree within `tolerance` map locations, the first
pass's answer stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import NamedTuple

import numpy as np

from pocketvec.checks import check_number

__all__ = ["ItemZoom", "PhotoRegion", "RowMap", "box_corners", "fit_item_corners", "item_corners", "item_region",
           "photo_grid_to_pixels"]

STRONGEST = 16  # the correspondences whose triples are tried: C(16, 3) = 560 hypotheses
MIN_SIDE = 16  # pixels: a smaller region is no zoom
# Kept between each decision and its bound, so that no platform's last-bit rounding decides: correspondences are
# map locations' centres, so a fit is often exact and puts an error at exactly `tolerance` (a location one off) or a
# box edge on a whole pixel, which numpy computes as 0.9999999999999996 where the sample app gets 1.0000000000000002.
SLACK = 1e-9


@dataclass(frozen=True)
class ItemZoom:
    """How photos are zoomed to their item (`Recognizer(item_zoom=...)`; the defaults are what every path uses)."""

    inliers: int = 8  # correspondences that must agree for a region
    tolerance: float = 1.0  # map locations

    def __post_init__(self) -> None:
        check_number("item_zoom inliers", self.inliers, 3, 1000, integer=True)
        check_number("item_zoom tolerance", self.tolerance, 0.01, 100.0)


def _centres(side: int) -> np.ndarray:
    """(side x side, 2) the (x, y) centre of each map location, row-major, in map units."""
    rows, cols = np.divmod(np.arange(side * side), side)
    return np.stack([cols, rows], axis=1).astype(np.float64) + 0.5


def _affines(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(T, 3, 2) affine maps [x y 1] @ M from each triple of source points (T, 3, 2) to its targets; a
    degenerate (collinear) triple gets NaN."""
    a = np.concatenate([src, np.ones((*src.shape[:2], 1))], axis=2)
    singular = np.abs(np.linalg.det(a)) < 1e-9
    a[singular] = np.eye(3)
    out = np.linalg.solve(a, dst)
    out[singular] = np.nan
    return out


def fit_item_corners(photo_map: np.ndarray, row_map: np.ndarray, corners: np.ndarray, zoom: ItemZoom,
                     row_locations: np.ndarray | None = None) -> np.ndarray | None:
    """The item's `corners` (4, 2), in the row's map units, mapped into the photo's map units; None when fewer
    than `zoom.inliers` mutual best matches agree. The photo's map is (side x side, channels); the row's holds the
    locations `row_locations` (indices into the same grid; None: every location), unit rows."""
    centres = _centres(math.isqrt(len(photo_map)))
    row_centres = centres if row_locations is None else centres[row_locations]
    cosines = np.asarray(row_map, np.float64) @ np.asarray(photo_map, np.float64).T  # (row, photo)
    to_photo, to_row = cosines.argmax(axis=1), cosines.argmax(axis=0)
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    inside = (row_centres[:, 0] > x0) & (row_centres[:, 0] < x1) & (row_centres[:, 1] > y0) & (row_centres[:, 1] < y1)
    mutual = np.flatnonzero((to_row[to_photo] == np.arange(len(to_photo))) & inside)
    if len(mutual) < zoom.inliers:
        return None
    strength = cosines[mutual, to_photo[mutual]]
    mutual = mutual[np.argsort(-strength, kind="stable")]
    src, dst = row_centres[mutual], centres[to_photo[mutual]]
    triples = np.array(list(combinations(range(min(STRONGEST, len(mutual))), 3)))
    maps = _affines(src[triples], dst[triples])  # (T, 3, 2)
    ones = np.concatenate([src, np.ones((len(src), 1))], axis=1)
    errors = np.linalg.norm(np.einsum("nk,tkd->tnd", ones, maps) - dst, axis=2)  # (T, n); NaN for degenerate
    counts = (errors < zoom.tolerance - SLACK).sum(axis=1)
    best = int(np.argmax(counts))  # the first of the most agreed
    if counts[best] < zoom.inliers:
        return None
    agreed = errors[best] < zoom.tolerance - SLACK
    fitted, *_ = np.linalg.lstsq(ones[agreed], dst[agreed], rcond=None)
    return np.concatenate([corners, np.ones((4, 1))], axis=1) @ fitted


def photo_grid_to_pixels(points: np.ndarray, side: int, crop: str, height: int, width: int) -> np.ndarray:
    """Points (N, 2) in the map units of a photo (height x width) cropped with `crop` -> photo pixels."""
    if crop == "scale_fill":
        return points * [width / side, height / side]
    if crop == "center_crop":
        short = min(height, width)
        return points * (short / side) + [(width - short) / 2, (height - short) / 2]
    long = max(height, width)  # scale_fit: the photo letterboxed into the square
    return points * (long / side) - [(long - width) / 2, (long - height) / 2]


class RowMap(NamedTuple):
    """A candidate row's local map: (kept locations, channels) at `locations` (indices into the side x side grid;
    None: every location), and the item's `corners` (4, 2) in map units."""

    map: np.ndarray
    locations: np.ndarray | None
    corners: np.ndarray


class PhotoRegion(NamedTuple):
    """A photo's item region, `box` (top, left, bottom, right; end exclusive), in the pixels of the photo decoded
    whole, `height` x `width` (the grid `item_region` answers in)."""

    box: tuple[int, int, int, int]
    height: int
    width: int


def item_region(photo_map: np.ndarray, candidates: list[RowMap], photo_crop: str, height: int, width: int,
                zoom: ItemZoom) -> tuple[int, int, int, int] | None:
    """The photo's pixel region (top, left, bottom, right; end exclusive) holding the item, from the first
    candidate (best first) whose map gives one; None when none does or the region is under MIN_SIDE."""
    side = math.isqrt(len(photo_map))
    for row in candidates:
        mapped = fit_item_corners(photo_map, row.map, row.corners, zoom, row.locations)
        if mapped is None:
            continue
        pixels = photo_grid_to_pixels(mapped, side, photo_crop, height, width)
        (left, top), (right, bottom) = pixels.min(axis=0), pixels.max(axis=0)
        box = (max(0, int(np.floor(top + SLACK))), max(0, int(np.floor(left + SLACK))),
               min(height, int(np.ceil(bottom - SLACK))), min(width, int(np.ceil(right - SLACK))))
        if box[2] - box[0] < MIN_SIDE or box[3] - box[1] < MIN_SIDE:
            return None
        return box
    return None


def item_corners(crop: str, side: int, height: int | None = None, width: int | None = None) -> np.ndarray:
    """The corners (4, 2) of an item (height x width pixels) in its map units under the items' `crop`: under
    `scale_fit` the letterboxed item, else (or with no size known) the whole map."""
    low, high = np.zeros(2), np.full(2, float(side))
    if crop == "scale_fit" and height and width:
        extent = np.array([width, height], np.float64) * (side / max(height, width))
        low, high = (side - extent) / 2, (side + extent) / 2
    return _rectangle(low, high)


def box_corners(box: np.ndarray) -> np.ndarray:
    """The corners (4, 2) of a content box (top, left, rows, columns) in map locations
    (pocketvec.runtime.content_box)."""
    top, left, rows, cols = (float(v) for v in box)
    return _rectangle(np.array([left, top]), np.array([left + cols, top + rows]))


def _rectangle(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]])
