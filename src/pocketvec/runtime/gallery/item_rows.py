"""Gallery rows of items, made in one pass: each item is read and decoded once, and its clean input and
simulated photos (pocketvec.runtime.gallery.views) are prepared on worker threads while the model embeds the
items before it, several items per inference batch.

The rows are the ones `with_views` makes from the same items: an item's photos depend only on its content hash,
and the engine embeds each input on its own (onnxruntime's outputs do not depend on the rest of the batch), so
neither the batching nor the number of workers changes a stored value.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from pocketvec.errors import ConfigError, ImageLoadError
from pocketvec.runtime.engines import Engine
from pocketvec.runtime.engines.base import EmbedResult, prepare_image
from pocketvec.runtime.gallery.views import GalleryViews, blend_views, view_photos
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.runtime.photo_crops import fuse_crops
from pocketvec.runtime.preprocess import PreprocessSpec

MAX_WORKERS = 4  # preparing an item costs about half of embedding its photos: more threads only wait

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class ItemInputs:
    """One item ready for the model: its identity (content hash), its clean input and its photos' inputs."""

    image: Path | np.ndarray
    identity: str
    clean: list[np.ndarray]
    photos: list[np.ndarray]
    size: tuple[int, int]  # (height, width) as decoded, upright


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def prepare_item(image: Path | np.ndarray, identity: str | None, views: GalleryViews,
                 spec: PreprocessSpec) -> ItemInputs:
    """Decode `image` once (a path; an array as it is), and preprocess it as an item and its `views.count`
    simulated photos as photos; `identity` None: the file's content hash. Raises ImageLoadError naming it."""
    if identity is None and not isinstance(image, Path):
        raise ConfigError("gallery rows of an image array need its identity (a hex content hash) to seed its views")
    identity = identity if identity is not None else content_hash(image)
    source = image if isinstance(image, Path) else None
    array = load_image(image) if isinstance(image, Path) else np.asarray(image)
    clean = prepare_image(array, spec, source=source)
    photos = [x for photo in view_photos(array, identity, views, spec.input_size)
              for x in prepare_image(photo, spec, query=True, source=source)] if views.count else []
    return ItemInputs(image, identity, clean, photos, array.shape[:2])


def ordered_map(fn: Callable[[Item], Result], items: Iterable[Item], workers: int,
                ahead: int) -> Iterator[Future[Result]]:
    """`fn` of each item on `workers` threads, in order, at most `ahead` items under way or waiting to be
    taken (a big catalogue is never held in memory); each result as a done Future (.result() re-raises)."""
    source = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pocketvec-items") as pool:
        pending = deque(pool.submit(fn, item) for item in itertools.islice(source, ahead))
        while pending:
            done = pending.popleft()
            done.exception()  # waits for it
            yield done
            pending.extend(pool.submit(fn, item) for item in itertools.islice(source, 1))  # once it is taken


def item_rows(engine: Engine, images: Sequence[Path | np.ndarray], views: GalleryViews,
              identities: Sequence[str] | None = None, batch_size: int = 32, workers: int | None = None,
              failures: list[ImageLoadError] | None = None,
              advance: Callable[[int], None] = lambda n: None) -> tuple[EmbedResult, list[str]]:
    """Gallery rows of `images` (item files or RGB arrays, with their content hashes; None: the files'),
    blended with their simulated photos as `views` says, with the clean images' local maps. A file that cannot
    be used is added to `failures` and skipped (without `failures`: raised). `batch_size`: model inputs per
    inference batch (whole items); `workers`: threads preparing items (None: default_workers()).
    -> (rows of the kept images in order, their content hashes); `advance(n)` reports items done."""
    spec = engine.metadata.preprocess
    per_batch = max(1, batch_size // (1 + views.count * engine.crops(query=True)))  # whole items
    workers = workers or default_workers()
    named = list(identities) if identities is not None else [None] * len(images)
    jobs = ordered_map(lambda job: prepare_item(*job, views, spec), zip(images, named, strict=True), workers,
                       ahead=per_batch + 2 * workers)
    done_items: list[ItemInputs] = []
    rows: list[np.ndarray] = []
    maps: list[np.ndarray] = []
    batch: list[ItemInputs] = []
    for job in jobs:
        try:
            batch.append(job.result())
        except ImageLoadError as e:
            if failures is None:
                raise
            failures.append(e)
            advance(1)
        if len(batch) == per_batch:
            _embed_batch(engine, batch, views, rows, maps)
            done_items += batch
            advance(len(batch))
            batch = []
    if batch:
        _embed_batch(engine, batch, views, rows, maps)
        done_items += batch
        advance(len(batch))
    dim, rerank = engine.metadata.embedding_dim, engine.metadata.local_rerank
    embeddings = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
    locals_ = None if rerank is None else np.concatenate(maps) if maps else np.zeros((0, *rerank.shape), np.float32)
    paths = [x.image for x in done_items if isinstance(x.image, Path)]
    sizes = np.array([x.size for x in done_items], np.int64).reshape(-1, 2)
    return EmbedResult(embeddings, paths, failures or [], locals_, sizes), [x.identity for x in done_items]


def _embed_batch(engine: Engine, batch: list[ItemInputs], views: GalleryViews, rows: list[np.ndarray],
                 maps: list[np.ndarray]) -> None:
    """One inference batch of the items' clean inputs and photos: their rows and clean maps appended."""
    clean = [x for item in batch for x in item.clean]
    embeddings, local = engine.run_inputs(clean + [x for item in batch for x in item.photos])
    if views.count:
        photos, _ = fuse_crops(embeddings[len(clean):], None, engine.crops(query=True))
        rows.append(blend_views(embeddings[: len(clean)], photos.reshape(len(batch), views.count, -1),
                                views.clean_weight))
    else:
        rows.append(embeddings)
    if local is not None:
        maps.append(local[: len(clean)])
