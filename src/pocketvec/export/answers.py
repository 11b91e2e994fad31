"""What `pocketvec verify` compares: each model's (an exported file's runtime engine, or the PyTorch model behind a
TorchEngine) outputs for the query images and its answers to them, as the runtime gives them where the model
re-ranks: the images embedded as photos (the model's query crops: the first pass), then zoomed to their item
(runtime.zoomed_photos) against the gallery images embedded as items, each image its own label; leave-one-out (the
gallery is the query images) zooms each image against the others. Text verification reads each photo in the region
its model answers from. A model without a local re-rank (no zoom) is answered as before, the images cropped as
items."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pocketvec.export.parity import Answers, Outputs, TextCheck
from pocketvec.runtime.engines.base import EmbedResult, Engine
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.item_zoom import ItemZoom, PhotoRegion
from pocketvec.runtime.zoomed_photos import zoom_to_items

Regions = list[PhotoRegion | None]
TextChecks = Callable[[Regions], TextCheck]  # the photos' regions -> text verification reading them there
Items = tuple[np.ndarray, np.ndarray | None]  # the gallery images' embeddings and local maps (None: no re-rank)


def gallery_of(engine: Engine, items: Items, rows: np.ndarray) -> Gallery:
    """The gallery images `rows` (each its own label, its index) as a float32 gallery of the engine's model."""
    gallery = Gallery.for_model(engine.metadata, "float32")
    names = [str(r) for r in rows]
    embeddings, maps = items
    gallery.add(embeddings[rows], names, names, None if maps is None else maps[rows], engine.metadata)
    return gallery


def zoomed(engine: Engine, items: Items, photos: list[Path], found: EmbedResult,
           leave_one_out: bool) -> tuple[EmbedResult, Regions]:
    """`found` (the photos embedded as photos) zoomed to their item against the gallery images, as the runtime
    zooms; leave-one-out, each photo against every gallery image but its own."""
    count, zoom = len(items[0]), ItemZoom()
    if engine.metadata.local_rerank is None:
        return found, [None] * len(photos)  # no local maps: nothing to zoom with
    if not leave_one_out:
        return zoom_to_items(engine, gallery_of(engine, items, np.arange(count)), found, photos, zoom)
    embeddings, maps, regions = found.embeddings.copy(), found.locals.copy(), []  # type: ignore[union-attr]
    for q, photo in enumerate(photos):
        others = gallery_of(engine, items, np.delete(np.arange(count), q))
        one, (region,) = zoom_to_items(engine, others, EmbedResult(embeddings[q : q + 1], locals=maps[q : q + 1]),
                                       [photo], zoom)
        embeddings[q], maps[q] = one.embeddings[0], one.locals[0]  # type: ignore[index]
        regions.append(region)
    return EmbedResult(embeddings, locals=maps), regions


def answers(engine: Engine, items: Items, photos: list[Path], leave_one_out: bool,
            text: TextChecks | None = None) -> tuple[Outputs, Answers]:
    """The engine's first pass on `photos` and its answers to them, each with the gallery images' outputs `items`
    (leave-one-out: the photos themselves, embedded as items)."""
    # a file without a local output is answered as verify always did: no zoom, the images cropped as items
    found = engine.embed_all(photos, query=engine.metadata.local_rerank is not None)
    first = Outputs(found.embeddings, items[0], found.locals, items[1])
    found, regions = zoomed(engine, items, photos, found, leave_one_out)
    outputs = Outputs(found.embeddings, items[0], found.locals, items[1])
    return first, Answers(outputs, regions, None if text is None else text(regions))


def text_checks(photos: Sequence[Path], gallery: Sequence[Path]) -> TextChecks:
    """Text verification of (photos, gallery) scores, each gallery image its own label: the gallery images' text
    read as enrolment reads items (now); each photo's as the matcher reads photos, in its model's region (when
    first needed; each photo and region read once for all models)."""
    from pocketvec.runtime.printed_text import PhotoTexts, read_item_texts
    from pocketvec.runtime.progress import progress_bar
    from pocketvec.runtime.text_verify import verify_rows, words

    with progress_bar("reading the gallery's text", len(gallery)) as advance:
        label_words = [words(text) for text in read_item_texts(gallery, advance=advance)]
    read: dict[tuple[int, PhotoRegion | None], str] = {}

    def check(regions: Regions) -> TextCheck:
        texts = PhotoTexts(photos, regions=regions)

        def text_of(q: int) -> str:
            key = (q, texts.region(q))
            if key not in read:
                read[key] = texts.read(q)
            return read[key]

        return lambda scores: verify_rows(scores, np.arange(scores.shape[1]), label_words, text_of)[0]

    return check
