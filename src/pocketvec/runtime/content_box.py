"""Which local map locations a compact gallery row keeps: the item's content box and its checkerboard.

The box is the block of map locations whose cells hold some of the item once the model's item crop places it
(`scale_fit` letterboxes a non-square item on black; the other crops fill the input), from the image's size
alone: (top, left, rows, columns) in map locations. Of the box, a row keeps the locations with row + column
even, in row-major order (neighbouring locations overlap, and the re-rank takes each location's best match:
half of them keep nearly all of its accuracy, docs/lab/compact-local-maps.md).
"""

from __future__ import annotations

import math

import numpy as np

from pocketvec.runtime.preprocess import PreprocessSpec

BOX_BYTES = 4  # top, left, rows, columns: one byte each


def map_side(locations: int) -> int:
    side = math.isqrt(locations)
    if side * side != locations:
        raise ValueError(f"a local map of {locations} locations is not a square grid")
    return side


def content_box(height: int, width: int, spec: PreprocessSpec, locations: int) -> tuple[int, int, int, int]:
    """(top, left, rows, columns) of the map locations that hold some of a height x width item."""
    side = map_side(locations)
    if spec.crop_mode != "scale_fit":
        return 0, 0, side, side
    size = spec.input_size
    ratio = size / max(height, width)  # as preprocess: letterbox on black
    new_w = max(1, min(size, math.floor(width * ratio + 0.5)))
    new_h = max(1, min(size, math.floor(height * ratio + 0.5)))
    top, left = (size - new_h) // 2, (size - new_w) // 2
    cell = size / side
    edges = np.arange(side) * cell
    rows = np.flatnonzero((edges + cell > top) & (edges < top + new_h))
    cols = np.flatnonzero((edges + cell > left) & (edges < left + new_w))
    return int(rows[0]), int(cols[0]), len(rows), len(cols)


def checker_count(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) boxes -> (N,) locations kept: ceil(rows x cols / 2) when the box's corner is even, else floor."""
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    cells = boxes[:, 2] * boxes[:, 3]
    return (cells + ((boxes[:, 0] + boxes[:, 1]) % 2 == 0)) // 2


def checker_locations(box: tuple[int, int, int, int] | np.ndarray, side: int) -> np.ndarray:
    """The kept locations of one box, as indices into the side x side map, row-major."""
    top, left, rows, cols = (int(v) for v in box)
    r, c = np.meshgrid(np.arange(top, top + rows), np.arange(left, left + cols), indexing="ij")
    keep = (r + c) % 2 == 0
    return (r[keep] * side + c[keep]).astype(np.int64)


def box_problem(boxes: np.ndarray, side: int) -> int | None:
    """The first box (N, 4) that is empty or leaves the side x side grid, or None."""
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    bad = (boxes[:, 2] < 1) | (boxes[:, 3] < 1) | (boxes[:, 0] + boxes[:, 2] > side) | \
        (boxes[:, 1] + boxes[:, 3] > side)
    return int(np.argmax(bad)) if bad.any() else None


def content_boxes(sizes: np.ndarray, spec: PreprocessSpec, locations: int) -> np.ndarray:
    """(N, 2) image (height, width) -> (N, 4) uint8 content boxes."""
    return np.array([content_box(int(h), int(w), spec, locations) for h, w in np.asarray(sizes).reshape(-1, 2)],
                    np.uint8).reshape(-1, BOX_BYTES)
