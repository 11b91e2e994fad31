"""The held-out evaluation of fine-tuning: the user's path, scored at the decision level.

The gallery is built as `pocketvec gallery build` builds it (each clean item cropped as the items are, blended
with the gallery views' simulated phone photos cropped as the photos are; the clean image's local map kept); the
queries are photos of the items from the *validation* simulator (pocketvec.data.validation_sim: phone aspect, its
own code and seed, never the training augmentation), cropped with the model's query crop and zoomed to their item
as the runtime zooms them (pocketvec.runtime.item_zoom); the scores are the matcher's (the local re-rank).
Reported: Recall@1, and the decision recall, the share of photos answered right by the best threshold + margin
rule whose precision is >= `DECISION_PRECISION` on these photos (0 when no rule reaches it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketvec.data.validation_sim import VALIDATION_SEED, decode_jpeg, validation_jpegs
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.gallery.views import GalleryViews, blend_views, view_photos
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.runtime.item_zoom import ItemZoom, RowMap, item_corners, item_region
from pocketvec.runtime.local_rerank import LocalRerank, label_ids, rerank, top_label_rows
from pocketvec.runtime.metrics import recall_at_k
from pocketvec.runtime.photo_crops import fuse_crops
from pocketvec.runtime.preprocess import CROP_MODES, PreprocessSpec, crops_from_name, crops_name, preprocess
from pocketvec.runtime.zoomed_photos import region_crop

DECISION_PRECISION = 0.99
# the photos' crops enrolment chooses from: either, or both fused
QUERY_CROPS = ("scale_fill", "center_crop", crops_name(("scale_fill", "center_crop")))


def query_crop_mode(name: str) -> str | tuple[str, ...]:
    """The PreprocessSpec.query_crop_mode of a photos' crop so named."""
    crops = crops_from_name(name)
    return crops[0] if len(crops) == 1 else crops


@dataclass
class HeldOut:
    items: torch.Tensor  # (N, 3, S, S) the clean items, cropped as the gallery's
    views: dict[str, torch.Tensor] | None  # crop -> (N, V, 3, S, S) the gallery views `gallery build` blends in,
    clean_weight: float                    # so cropped; None: clean rows
    photos: dict[str, torch.Tensor]  # crop -> (Q, 3, S, S) validation photos so cropped
    labels: list[str]
    photo_labels: list[str]
    choices: list[str] = field(default_factory=list)  # the photos' crops to score (QUERY_CROPS' names), in use first
    originals: list[bytes] = field(default_factory=list)  # the photos as their JPEG files, to zoom into
    zoom: ItemZoom | None = None  # the photos zoomed to their item, as the runtime does (runtime/item_zoom)

    def __post_init__(self) -> None:
        self.choices = self.choices or list(self.photos)

    @property
    def crops(self) -> tuple[str, ...]:
        """The photos' crops prepared, the one in use first."""
        return tuple(self.choices)

    def use_crop(self, crop: str) -> None:
        """Make `crop` the one evaluations use."""
        self.choices = [crop, *(c for c in self.choices if c != crop)]


def _pixels(images: Iterable[np.ndarray], spec: PreprocessSpec) -> torch.Tensor:
    """(N, 3, S, S) float16 0-255 (half the memory; within 0.07 of the float pixels)."""
    return torch.from_numpy(np.stack([preprocess(image, spec) for image in images])).permute(0, 3, 1, 2).half()


def make_held_out(paths: list[Path], labels: list[str], spec: PreprocessSpec, photos_per_item: int,
                  views: GalleryViews = GalleryViews(), crops: Iterable[str] = (), seed: int = VALIDATION_SEED,
                  zoom: ItemZoom | None = ItemZoom()) -> HeldOut:
    """The held-out set of the items at `paths`: `photos_per_item` validation photos of each, cropped with
    the spec's query crops and each of `crops` (QUERY_CROPS' names) besides; gallery rows made with `views`
    and the photos zoomed to their item with `zoom` (None: not), as the runtime does."""
    images = [load_image(path) for path in paths]
    originals, photo_labels = [], []
    for image, label in zip(images, labels, strict=True):
        originals += validation_jpegs(image, label, photos_per_item, seed)
        photo_labels += [label] * photos_per_item
    photos = [decode_jpeg(data) for data in originals]
    choices = list(dict.fromkeys((crops_name(spec.query_crops), *crops)))
    specs = {crop: replace(spec, crop_mode=crop, query_crop_mode=None)
             for crop in dict.fromkeys(c for choice in choices for c in crops_from_name(choice))}
    gallery_views = None
    if views.count:
        made = [view_photos(image, content_hash(path), views, spec.input_size)
                for image, path in zip(images, paths, strict=True)]
        if views.aspect == 1:  # square views look the same under every crop: one tensor, embedded once
            gallery_views = dict.fromkeys(specs, torch.stack([_pixels(item_views, spec) for item_views in made]))
        else:
            gallery_views = {crop: torch.stack([_pixels(item_views, cropped) for item_views in made])
                             for crop, cropped in specs.items()}
    by_crop = {crop: _pixels(photos, cropped) for crop, cropped in specs.items()}
    return HeldOut(_pixels(images, spec), gallery_views, views.clean_weight, by_crop, list(labels), photo_labels,
                   choices, originals if zoom else [], zoom)


@torch.no_grad()
def embed(model: torch.nn.Module, pixels: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """Float32 embeddings of `pixels` (N, 3, S, S) 0-255, in eval mode."""
    return _embed(model, pixels, batch_size, False)[0]


@torch.no_grad()
def _embed(model: torch.nn.Module, pixels: torch.Tensor, batch_size: int,
           with_locals: bool) -> tuple[np.ndarray, np.ndarray | None]:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunks = (pixels[start : start + batch_size].to(device).float() for start in range(0, len(pixels), batch_size))
    out = embed_batches(model, chunks, with_locals)
    model.train(was_training)
    return out


def local_settings(model: torch.nn.Module) -> LocalRerank | None:
    """The runtime's default re-rank settings for the shape of `model`'s stride-16 map (None: it has none)."""
    if not model.has_local_stage():
        return None
    size = model.config.preprocess.input_size
    with torch.no_grad():
        maps = model.local_maps(torch.zeros(1, 3, size, size, device=model.pixel_mean.device))
    return LocalRerank(locations=maps.shape[1], channels=maps.shape[2])


@torch.no_grad()
def embed_batches(model: torch.nn.Module, batches: Iterable[torch.Tensor],
                  with_locals: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Float32 embeddings of the batches (the model as it is, eval mode expected) and, `with_locals`, their
    local maps (Encoder.forward_with_locals: the same embeddings, plus the stride-16 map)."""
    forward = model.forward_with_locals if with_locals else lambda x: (model(x), None)
    rows, maps = [], []
    for batch in batches:
        embedding, local = forward(batch)
        rows.append(embedding.float().cpu().numpy())
        maps += [] if local is None else [local.float().cpu().numpy()]
    return np.concatenate(rows), np.concatenate(maps) if maps else None


def _fused(per_crop: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple[np.ndarray, np.ndarray | None]:
    """Each crop's (embeddings, local maps) of the same photos -> the photos' fused ones (runtime.photo_crops)."""
    embeddings = np.stack([e for e, _ in per_crop], axis=1)
    maps = None if per_crop[0][1] is None else np.stack([m for _, m in per_crop], axis=1)
    return fuse_crops(embeddings.reshape(-1, embeddings.shape[-1]),
                      None if maps is None else maps.reshape(-1, *maps.shape[2:]), len(per_crop))


def matcher_scores(model: torch.nn.Module, held_out: HeldOut,
                   crops: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For the photos' crops `crops` (QUERY_CROPS' names): {crop: (the (photos x items) scores the matcher
    answers from, re-ranked when the model has a local stage; the gallery rows as `gallery build` makes them
    for that crop)}."""
    crops = list(crops)
    missing = [crop for crop in crops if not set(crops_from_name(crop)) <= set(held_out.photos)]
    if missing:
        raise ValueError(f"no held-out photos cropped {missing}; prepared: {list(held_out.photos)} of {CROP_MODES}")
    rerank_config = local_settings(model)
    with_locals = rerank_config is not None
    clean, item_maps = _embed(model, held_out.items, 32, with_locals)
    photos_of: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    views_of: dict[int, np.ndarray] = {}  # by the views tensor, which crops may share
    out = {}
    for name in crops:
        rows = clean
        if held_out.views is not None:
            for crop in crops_from_name(name):
                views = held_out.views[crop]
                if id(views) not in views_of:
                    views_of[id(views)] = embed(model, views.flatten(0, 1))
            per_crop = [(views_of[id(held_out.views[crop])], None) for crop in crops_from_name(name)]
            embedded = _fused(per_crop)[0].reshape(len(clean), -1, clean.shape[1])
            rows = blend_views(clean, embedded, held_out.clean_weight)
        for crop in crops_from_name(name):
            if crop not in photos_of:
                photos_of[crop] = _embed(model, held_out.photos[crop], 32, with_locals)
        photos, photo_maps = _fused([photos_of[crop] for crop in crops_from_name(name)])
        scores = photos @ rows.T
        if rerank_config is not None:
            ids = label_ids(held_out.labels)
            scores = rerank(scores, ids, photo_maps, item_maps, rerank_config)
            if held_out.zoom is not None and held_out.originals:
                photos, photo_maps = _zoomed(model, held_out, name, (photos, photo_maps), scores, item_maps,
                                             rerank_config)
                scores = rerank(photos @ rows.T, ids, photo_maps, item_maps, rerank_config)
        out[name] = scores, rows
    return out


def _zoomed(model: torch.nn.Module, held_out: HeldOut, name: str, first: tuple[np.ndarray, np.ndarray],
            scores: np.ndarray, item_maps: np.ndarray, config: LocalRerank) -> tuple[np.ndarray, np.ndarray]:
    """The photos' (embeddings, maps) with each photo whose item region is found embedded again from it, as
    pocketvec.runtime.zoomed_photos does: the candidates are the re-rank's (best first), their maps the clean
    items' (full maps: the item's corners are the whole map), the region cropped with the photos' crop `name`."""
    side = math.isqrt(config.locations)
    spec = replace(model.config.preprocess, query_crop_mode=query_crop_mode(name))
    corners, ids = item_corners(spec.crop_mode, side), label_ids(held_out.labels)
    embeddings, maps = first[0].copy(), first[1].copy()
    zoomed, regions = [], []
    for q, data in enumerate(held_out.originals):
        picked = top_label_rows(scores[q], ids, config.top_k)
        candidates = [RowMap(item_maps[r], None, corners) for r in picked if np.isfinite(scores[q, r])]
        photo = decode_jpeg(data)
        region = item_region(maps[q, : side * side], candidates, spec.query_crops[0], *photo.shape[:2],
                             held_out.zoom)  # type: ignore[arg-type]
        crop = region_crop(photo, region, spec)
        if crop is not None:
            zoomed.append(q)
            regions.append(crop)
    if zoomed:
        embeddings[zoomed], maps[zoomed] = _fused([_embed(model, _pixels(regions, crop_spec), 32, True)
                                                   for crop_spec in spec.query_specs()])
    return embeddings, maps


def evaluate(model: torch.nn.Module, held_out: HeldOut, crops: Iterable[str] = ()) -> dict[str, Any]:
    """Decision recall at precision >= DECISION_PRECISION and Recall@1 of the matcher's scores, the rule's
    threshold and margin, and the gallery rows' mean pairwise cosine (1.0 = collapsed), with the photos
    cropped as the held-out set's first crop (the one in use); with `crops`, {crop: those metrics}."""
    wanted = list(crops) or [held_out.crops[0]]
    by_crop = {}
    for crop, (matched, rows) in matcher_scores(model, held_out, wanted).items():
        pairs = (rows @ rows.T)[np.triu_indices(len(rows), 1)]
        fitted = calibrate(matched, held_out.photo_labels, held_out.labels, DECISION_PRECISION)
        by_crop[crop] = {"decision_recall": fitted.chosen.recall if fitted.target_reached else 0.0,
                         "recall_at_1": recall_at_k(matched, held_out.photo_labels, held_out.labels, 1),
                         "threshold": fitted.chosen.threshold, "margin": fitted.chosen.margin,
                         "mean_cosine": float(pairs.mean()) if len(pairs) else 1.0, "crop": crop,
                         "photos": len(held_out.photo_labels)}
    return by_crop if crops else by_crop[wanted[0]]


def choose_query_crop(model: torch.nn.Module, held_out: HeldOut) -> dict[str, Any]:
    """Score `model` with each of the held-out photos' crops, keep the best (decision recall, then Recall@1)
    first in `held_out.photos`, so later evaluations use it. -> {"chosen": crop, "held_out": {crop: metrics}}."""
    by_crop = evaluate(model, held_out, held_out.crops)
    chosen = max(by_crop, key=lambda crop: score_key(by_crop[crop]))
    held_out.use_crop(chosen)
    return {"chosen": chosen, "held_out": by_crop}


def score_key(metrics: dict) -> tuple[float, float]:
    """How held-out results compare: decision recall decides, Recall@1 breaks ties."""
    return metrics["decision_recall"], metrics["recall_at_1"]


__all__ = ["DECISION_PRECISION", "QUERY_CROPS", "HeldOut", "choose_query_crop", "embed", "embed_batches",
           "evaluate", "local_settings", "make_held_out", "matcher_scores", "query_crop_mode", "score_key"]
