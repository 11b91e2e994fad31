"""Printed text for text verification: read once from each item's clean image at enrolment, and from a
photo only when its candidates' texts differ (`runtime/text_verify.py` decides; `PhotoTexts` reads): from the
item's region where zoom to the item found one (pocketvec.runtime.zoomed_photos), else the whole photo.

Reading needs the OCR models of the `pocketvec[text]` extra; `text_available()` says whether they are
installed. A new gallery reads its items' text when they are (unless told not to: `gallery build --no-text`,
`Recognizer(text=False)`); one that keeps texts is verified by them from then on; a gallery without texts
matches by the image alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from pocketvec.errors import PocketvecWarning
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.images import load_image
from pocketvec.runtime.item_zoom import PhotoRegion
from pocketvec.runtime.text_reader import DEFAULT_MODELS, PACKAGES, TextReader, TextReaderError, find_models
from pocketvec.runtime.text_verify import TextVerify

ImageLike = str | Path | np.ndarray
ITEM_DETECT_SIDE = 960  # a clean item image is read at this long side (its small print too)
PHOTO_DETECT_SIDE = 640  # a photo is read at this long side
READ_MAX_SIDE = 2048  # images are decoded at most this large for reading (the lines are cut from it)
TEXT_MARGIN_PERCENT = 5  # an item's region is read grown by this much of its sides on each side (print at its edge)


def text_available(models: str = DEFAULT_MODELS) -> bool:
    """Whether the OCR models `models` names can be had (a known package installed, or a folder)."""
    try:
        find_models(models)
    except TextReaderError:
        return False
    return True


def wanted_models(wanted: bool | None, models: str = DEFAULT_MODELS) -> str | None:
    """The OCR models a new gallery reads its items' text with: `models` when they are installed and `wanted` is
    not False (`wanted` True: they must be, else the error names the extra), else None."""
    if wanted is False:
        return None
    if wanted is None:
        return models if text_available(models) else None
    find_models(models)  # raises, naming what to install
    return models


def text_verification(gallery: Gallery, wanted: bool | None, models: str = DEFAULT_MODELS) -> str | None:
    """The OCR models that verify text with `gallery`, or None. A gallery that keeps texts verifies unless
    `wanted` is False (with the models that read them, when known); an empty one as `wanted_models`. A gallery
    that keeps texts without the models installed matches by the image alone, and says so (`wanted` True:
    refused, naming the extra)."""
    if wanted is False:
        return None
    if not gallery.reads_text:
        return wanted_models(wanted, models) if gallery.count == 0 else None
    models = gallery.text_reader if gallery.text_reader in PACKAGES else models
    if text_available(models):
        return models
    if wanted:
        find_models(models)
    warnings.warn(PocketvecWarning(
        f"the gallery keeps its items' printed text but the OCR models {models!r} are not installed: matching "
        "without text verification (pip install 'pocketvec[text]'); its calibrated rule assumed it"), stacklevel=3)
    return None


def photo_texts(gallery: Gallery, photos: Sequence[ImageLike], wanted: bool | None = None,
                regions: Sequence[PhotoRegion | None] | None = None) -> PhotoTexts | None:
    """What the matcher needs to verify `photos` (each read in its item's region, where `regions` gives one) by
    their text against `gallery`, None when it does not."""
    models = text_verification(gallery, wanted) if gallery.reads_text else None
    return None if models is None else PhotoTexts(list(photos), models, regions=regions)


@cache
def text_reader(models: str = DEFAULT_MODELS, detect_side: int = PHOTO_DETECT_SIDE) -> TextReader:
    """One reader per process and setting (one thread: the matcher runs beside the embedding model)."""
    return TextReader(models, threads=1, detect_side=detect_side)


def text_box(region: PhotoRegion, height: int, width: int,
             margin_percent: int = TEXT_MARGIN_PERCENT) -> tuple[int, int, int, int]:
    """The pixels (top, left, bottom, right; end exclusive) read for the item's `region` in the photo as decoded
    for reading, `height` x `width` (at most READ_MAX_SIDE): the region's box scaled there (outwards), grown by
    `margin_percent` of its height and width on each side, within the photo. Integers only: the sample app's
    `textBox` gives the same pixels."""
    top, left, bottom, right = region.box
    top, bottom = top * height // region.height, -(-bottom * height // region.height)
    left, right = left * width // region.width, -(-right * width // region.width)
    dy, dx = (bottom - top) * margin_percent // 100, (right - left) * margin_percent // 100
    return max(0, top - dy), max(0, left - dx), min(height, bottom + dy), min(width, right + dx)


def read_text(reader: TextReader, image: ImageLike, region: PhotoRegion | None = None) -> str:
    """The image's text (`region`'s only, as `text_box` grows it, when given), one line per detected line, top
    to bottom."""
    rgb = load_image(image, READ_MAX_SIDE) if isinstance(image, (str, Path)) else np.asarray(image)
    if region is not None:
        top, left, bottom, right = text_box(region, *rgb.shape[:2])
        rgb = rgb[top:bottom, left:right]
    return "\n".join(line.text for line in reader.read(rgb))


def read_item_texts(images: Sequence[ImageLike], models: str = DEFAULT_MODELS,
                    advance: Callable[[int], None] | None = None) -> list[str]:
    """The printed text of each clean item image (enrolment)."""
    reader = text_reader(models, ITEM_DETECT_SIDE)
    texts = []
    for image in images:
        texts.append(read_text(reader, image))
        if advance is not None:
            advance(1)
    return texts


@dataclass
class PhotoTexts:
    """The photos being matched, read on demand: `read(q)` is photo q's text (each photo read once), from its
    item's region where `regions` gives one (`zoom_to_items`' regions), else the whole photo."""

    photos: Sequence[ImageLike]
    models: str = DEFAULT_MODELS
    settings: TextVerify = field(default_factory=TextVerify)
    texts: dict[int, str] = field(default_factory=dict)  # the photos read so far
    regions: Sequence[PhotoRegion | None] | None = None  # per photo; None: every photo read whole

    def __post_init__(self) -> None:
        if self.regions is not None and len(self.regions) != len(self.photos):
            raise ValueError(f"PhotoTexts: {len(self.regions)} regions for {len(self.photos)} photos")

    def region(self, q: int) -> PhotoRegion | None:
        return None if self.regions is None else self.regions[q]

    def read(self, q: int) -> str:
        if q not in self.texts:
            self.texts[q] = read_text(text_reader(self.models, PHOTO_DETECT_SIDE), self.photos[q], self.region(q))
        return self.texts[q]
