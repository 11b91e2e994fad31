"""How small can the re-rank's local maps get (issue: catalogue scale)? A gallery row keeps its item's map,
14 x 14 locations x 112 float16 channels (43.9 KB); photos are matched as the matcher matches them (gallery
views, re-rank), with each map made smaller the same way on both sides:

- channels projected to d by a PCA fitted on ANOTHER tier's item maps (never the tier scored), renormalised;
- locations pooled 2 x 2 (7 x 7) before the projection, or not;
- values stored as int8 (x 127, the gallery's unit-vector codec) or float16;
- or each location product-quantised (faiss, m sub-vectors of 8 bits, codebooks fitted on the other tier):
  m bytes per location, the photo's map kept exact (asymmetric distances).

`--compact SELECT:CODEC ...` scores stored subsets of each item's locations, coded, with the re-rank scoring
a row over its stored locations only (the photo's map stays exact):

- SELECT: `all` (196), `content` (the locations whose 16 x 16 cell holds some of the item: `scale_fit`
  letterboxes non-square items on black), `checker` (content locations with row + column even), `distinct-K`
  (K content locations per item, those least matched by its 5 nearest gallery neighbours' content locations);
- CODEC: `f16`, `int8`, `pq-M` / `pq-MxB` (faiss product quantiser, M sub-vectors of B bits, 8 by default),
  `opq-M` (OPQ rotation, then PQ), `rq-M` (residual quantiser, M x 8 bits);
- `--codebooks model` fits on the `--fit` tier's content locations (a codebook shipped with the model: no
  bytes per item), `gallery` on the scored gallery's stored locations (a codebook per gallery: its float16
  bytes shared by a CATALOGUE-item gallery and counted per item).

Reported per variant on the tier's photos: bytes per item (int8 embedding included; mean and largest), Recall@1,
the best recall at precision >= 0.99 (oracle) and the decision recall (threshold + margin calibrated at 0.99 on
each item's first 40 % of photos, scored on the rest, as `pocketvec bench`), beside the full maps' and no
re-rank.

    python experiments/compact_local_maps.py MODEL.onnx WORK/dev/lookalikes --fit WORK/dev/labels
    python experiments/compact_local_maps.py MODEL.onnx WORK/dev/lookalikes --fit WORK/dev/labels --no-grid \
        --pq --compact content:f16 content:pq-8 checker:pq-16 --codebooks model gallery
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import calibrating, gallery_items, photo_numbers, query_photos
from PIL import Image

from pocketvec.bench.measure import decision_operating_point
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.content_box import BOX_BYTES, content_box, map_side
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery.views import GalleryViews, blend_views, view_photos
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.runtime.local_rerank import LocalRerank, label_ids, rerank
from pocketvec.runtime.metrics import recall_at_k
from pocketvec.runtime.preprocess import PreprocessSpec

CATALOGUE = 255  # items sharing a per-gallery codebook (the catalogue)
NEIGHBOURS = 5  # gallery neighbours a `distinct-K` location is compared with
UNCODED = ("", "f16", "int8")  # codecs without a codebook
FIT_SHARE = 0.9  # of the codebook's data, with --seeds

def embedded(engine, tier: Path, cache: Path) -> dict[str, np.ndarray]:
    """The tier's gallery rows (with views), item maps, photo embeddings and photo maps (cached)."""
    if cache.is_file():
        return dict(np.load(cache, allow_pickle=False))
    size = engine.metadata.preprocess.input_size
    paths, _ = gallery_items(tier)
    items = engine.embed_all(paths)
    views = np.stack([engine.embed(view_photos(load_image(p), content_hash(p), GalleryViews(), size), query=True)
                      for p in paths])
    photos = engine.embed_all(query_photos(tier)[0], query=True)
    out = {"rows": blend_views(items.embeddings, views, 0.5), "item_maps": items.locals,
           "photos": photos.embeddings, "photo_maps": photos.locals}
    np.savez(cache, **out)
    return out


def pooled(maps: np.ndarray) -> np.ndarray:
    """(N, 196, C) -> (N, 49, C): 2 x 2 means of the 14 x 14 grid, renormalised."""
    n, p, c = maps.shape
    side = round(p ** 0.5)
    grid = maps.reshape(n, side // 2, 2, side // 2, 2, c).mean(axis=(2, 4)).reshape(n, -1, c)
    return grid / np.linalg.norm(grid, axis=-1, keepdims=True).clip(1e-12)


def projected(maps: np.ndarray, basis: np.ndarray | None, int8: bool) -> np.ndarray:
    out = maps if basis is None else maps @ basis
    out = out / np.linalg.norm(out, axis=-1, keepdims=True).clip(1e-12)
    return np.round(out * 127).clip(-127, 127) / 127 if int8 else out.astype(np.float16).astype(np.float32)


def product_quantised(maps: np.ndarray, fit: np.ndarray, m: int) -> np.ndarray:
    """`maps` encoded by a product quantiser (m sub-vectors, 256 centroids each) trained on `fit`, decoded and
    renormalised: what a gallery of PQ codes scores with."""
    import faiss

    channels = maps.shape[-1]
    quantiser = faiss.ProductQuantizer(channels, m, 8)
    quantiser.train(np.ascontiguousarray(fit.reshape(-1, channels), dtype=np.float32))
    flat = np.ascontiguousarray(maps.reshape(-1, channels), dtype=np.float32)
    decoded = quantiser.decode(quantiser.compute_codes(flat)).reshape(maps.shape)
    return decoded / np.linalg.norm(decoded, axis=-1, keepdims=True).clip(1e-12)


def pca_basis(maps: np.ndarray, d: int) -> np.ndarray:
    flat = maps.reshape(-1, maps.shape[-1]).astype(np.float64)
    flat = flat - flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    return vt[:d].T.astype(np.float32)


def content_cells(paths: list[Path], spec: PreprocessSpec, locations: int) -> np.ndarray:
    """(N, locations) bool: the map locations whose cell holds some of the item once the item crop places it
    (the product's content box, runtime/content_box.py; only the image size is read)."""
    keep = []
    for path in paths:
        with Image.open(path) as image:
            w, h = image.size
        top, left, rows, cols = content_box(h, w, spec, locations)
        side = map_side(locations)
        mask = np.zeros((side, side), dtype=bool)
        mask[top : top + rows, left : left + cols] = True
        keep.append(mask.ravel())
    return np.stack(keep)


def least_matched(maps: np.ndarray, content: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """(N, P) bool: per item the k content locations whose best cosine with any content location of its
    NEIGHBOURS nearest gallery items (by row cosine) is lowest: the marks that tell it from its look-alikes."""
    neighbours = np.argsort(-(rows @ rows.T) + 2 * np.eye(len(rows)), axis=1)[:, :NEIGHBOURS]
    keep = np.zeros_like(content)
    for i, near in enumerate(neighbours):
        others = maps[near][content[near]]
        matched = (maps[i] @ others.T).max(axis=1)
        matched[~content[i]] = np.inf
        keep[i, np.argsort(matched)[:min(k, content[i].sum())]] = True
    return keep


def selected(name: str, maps: np.ndarray, content: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """SELECT -> ((N, P) bool of the stored locations, bytes per item that say which: a content box of 4 bytes
    or a bit per location)."""
    side = round(maps.shape[1] ** 0.5)
    if name == "all":
        return np.ones_like(content), 0
    if name == "content":
        return content, BOX_BYTES
    if name == "checker":  # the product's compact rows (runtime/content_box.py)
        r, c = np.divmod(np.arange(side * side), side)
        return content & ((r + c) % 2 == 0), BOX_BYTES
    if match := re.fullmatch(r"distinct-(\d+)", name):
        return least_matched(maps, content, rows, int(match[1])), math.ceil(side * side / 8)
    raise SystemExit(f"unknown selection {name!r}: all, content, checker or distinct-K")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-12)


def coder(name: str, fit: np.ndarray, channels: int,
          seed: int | None) -> tuple[Callable[[np.ndarray], np.ndarray], float, int]:
    """CODEC fitted on `fit` -> (vectors -> the vectors encoded, decoded and renormalised; bytes per location;
    codebook bytes as float16). `seed`: fit on a random FIT_SHARE of `fit`, k-means seeded with it (None: all
    of `fit`, faiss's default seed)."""
    import faiss

    faiss.omp_set_num_threads(1)
    if seed is not None:
        fit = fit[np.random.default_rng(seed).random(len(fit)) < FIT_SHARE]
    fit = np.ascontiguousarray(fit, dtype=np.float32)
    if name in UNCODED:
        return (lambda x: projected(x, None, name == "int8")), channels * (1 if name == "int8" else 2), 0
    match = re.fullmatch(r"(pq|opq|rq)-(\d+)(?:x(\d+))?", name)
    if not match:
        raise SystemExit(f"unknown codec {name!r}: f16, int8, pq-M, pq-MxB, opq-M or rq-M")
    kind, m, bits = match[1], int(match[2]), int(match[3] or 8)
    if kind == "rq":
        quantiser = faiss.ResidualQuantizer(channels, m, bits)
        quantiser.cp.seed += seed or 0
        quantiser.train(fit)
        return (lambda x: unit(quantiser.decode(quantiser.compute_codes(contiguous(x))))), m * bits / 8, \
            m * 2 ** bits * channels * 2
    rotation, width = None, channels
    if kind == "opq":
        width = m * math.ceil(channels / m)
        rotation = faiss.OPQMatrix(channels, m, width)
        rotation.train(fit)
        fit = rotation.apply_py(fit)
    quantiser = faiss.ProductQuantizer(width, m, bits)
    quantiser.cp.seed += seed or 0
    quantiser.train(contiguous(fit))

    def code(x: np.ndarray) -> np.ndarray:
        x = contiguous(x) if rotation is None else rotation.apply_py(contiguous(x))
        decoded = quantiser.decode(quantiser.compute_codes(contiguous(x)))
        return unit(decoded if rotation is None else rotation.reverse_transform(decoded))

    return code, m * bits / 8, 2 ** bits * width * 2 + (channels * width * 2 if rotation is not None else 0)


def contiguous(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def rerank_over(similarity: np.ndarray, row_label: np.ndarray, query_locals: np.ndarray,
                gallery_locals: np.ndarray, stored: np.ndarray, config: LocalRerank) -> np.ndarray:
    """The runtime's `rerank` with each gallery row scored over its stored locations (`stored` (R, P)): the rows
    as a compact gallery's decoder gives them, each of its own length."""

    class StoredRows:
        def __getitem__(self, ids: np.ndarray) -> list[np.ndarray]:
            return [gallery_locals[i][stored[i]] for i in np.atleast_1d(ids)]

    return rerank(similarity, row_label, query_locals, StoredRows(), config)


def compact_variant(spec: str, source: str, scored: dict[str, np.ndarray], content: np.ndarray,
                    fit_maps: np.ndarray, fit_content: np.ndarray,
                    symmetric: bool, seed: int | None) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """SELECT:CODEC with codebooks from `source` -> (name, decoded gallery maps, stored (N, P), bytes per item
    beside the embedding, the photo maps: exact, or coded the same way when `symmetric`)."""
    select, _, codec = spec.partition(":")
    maps, channels = scored["item_maps"], scored["item_maps"].shape[2]
    stored, index_bytes = selected(select, maps, content, scored["rows"])
    fit = (fit_maps[fit_content] if select != "all" else fit_maps.reshape(-1, channels)) \
        if source == "model" else maps[stored]
    code, per_location, codebook = coder(codec or "f16", fit, channels, seed)
    decoded = np.zeros_like(maps)
    decoded[stored] = code(maps[stored])
    photo_maps = scored["photo_maps"]
    if symmetric:
        photo_maps = code(photo_maps.reshape(-1, channels)).reshape(photo_maps.shape)
    shared = codebook / CATALOGUE if source == "gallery" else 0.0
    item_bytes = stored.sum(axis=1) * per_location + index_bytes + shared
    name = f"{select}:{codec or 'f16'}" + (f" (codebooks: {source})" if codebook else "") + \
        (", photos coded too" if symmetric else "") + (f", fit seed {seed}" if seed is not None and codebook else "")
    return name, decoded, stored, item_bytes, photo_maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--fit", type=Path, required=True,
                        help="the tier whose item maps the PCA bases and the model codebooks are fitted on")
    parser.add_argument("--dims", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--pq", type=int, nargs="*", default=[8, 16], help="sub-quantisers per location")
    parser.add_argument("--pq-weights", type=float, nargs="+", default=[4.0], help="re-rank weights for PQ maps")
    parser.add_argument("--no-grid", action="store_true", help="only the PQ variants (and the references)")
    parser.add_argument("--compact", nargs="+", default=[], metavar="SELECT:CODEC",
                        help="stored locations and their codec, e.g. content:pq-8 checker:opq-16 distinct-98:pq-16")
    parser.add_argument("--codebooks", nargs="+", choices=("model", "gallery"), default=["model"],
                        help="where --compact codebooks are fitted: the --fit tier, or the scored gallery")
    parser.add_argument("--symmetric", action="store_true",
                        help="code the photo maps with the same --compact quantiser (the default keeps them exact)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[None],
                        help="fit each --compact codebook once per seed on a random 90 %% of its data, then the spread")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    engine = open_engine(args.model, "auto", 2)
    scored = embedded(engine, args.tier, args.tier / "compact-maps-cache.npz")
    fit_cache = args.fit / "compact-maps-fit.npz"
    if not fit_cache.is_file():
        np.savez(fit_cache, maps=engine.embed_all(gallery_items(args.fit)[0]).locals)
    fit_maps = np.load(fit_cache, allow_pickle=False)["maps"]
    paths, labels = gallery_items(args.tier)
    photo_paths, photo_labels = query_photos(args.tier)
    held = calibrating(photo_numbers(photo_paths))
    ids, config = label_ids(labels), engine.metadata.local_rerank
    cosines = scored["photos"] @ scored["rows"].T
    dim = scored["rows"].shape[1]

    def row(name: str, similarity: np.ndarray, map_bytes: float | np.ndarray) -> dict:
        oracle = calibrate(similarity, photo_labels, labels, 0.99)
        decision = decision_operating_point(similarity, photo_labels, labels, held) or {}
        out = {"variant": name, "bytes_per_item": round(dim + float(np.mean(map_bytes))),
               "largest_item_bytes": round(dim + float(np.max(map_bytes))),
               "recall_at_1": round(recall_at_k(similarity, photo_labels, labels, 1), 4),
               "oracle_recall_at_p99": round(oracle.chosen.recall if oracle.target_reached else 0.0, 4),
               "decision_recall": round(decision.get("recall", float("nan")), 4),
               "decision_precision": round(decision.get("precision", float("nan")), 4)}
        print(json.dumps(out), flush=True)
        return out

    full = rerank(cosines, ids, scored["photo_maps"], scored["item_maps"], config)
    every = np.ones(scored["item_maps"].shape[:2], dtype=bool)
    if not np.allclose(full, rerank_over(cosines, ids, scored["photo_maps"], scored["item_maps"], every, config),
                       atol=1e-5):
        raise SystemExit("the re-rank over stored locations differs from the runtime's with every location stored")
    rows = [row("no re-rank", cosines, 0), row("full maps, float16", full, scored["item_maps"][0].size * 2)]
    for pool in () if args.no_grid else (False, True):
        rows += grid_rows(scored, fit_maps, pool, args.dims, cosines, ids, config, row)
    for m in args.pq:
        decoded = product_quantised(scored["item_maps"], fit_maps, m)
        for weight in args.pq_weights:
            similarity = rerank(cosines, ids, scored["photo_maps"], decoded, replace(config, weight=weight))
            rows.append(row(f"196 locations, PQ {m} x 8 bits, re-rank weight {weight:g}", similarity,
                            scored["item_maps"].shape[1] * m))
    spec, locations = engine.metadata.preprocess, config.locations
    content = content_cells(paths, spec, locations)
    fit_content = content_cells(gallery_items(args.fit)[0], spec, locations)
    for spec in args.compact:
        coded = spec.partition(":")[2] not in UNCODED
        for source in args.codebooks if coded else args.codebooks[:1]:
            spread = []
            for seed in args.seeds if coded else [None]:
                name, decoded, stored, item_bytes, photo_maps = compact_variant(
                    spec, source, scored, content, fit_maps, fit_content, args.symmetric, seed)
                spread.append(row(name, rerank_over(cosines, ids, photo_maps, decoded, stored, config), item_bytes))
            rows += spread + ([summary(spread)] if len(spread) > 1 else [])
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


def summary(spread: list[dict]) -> dict:
    """Mean, lowest and highest of each accuracy over the seeds' rows."""
    out = {"variant": spread[0]["variant"].rsplit(", fit seed", 1)[0] + f", {len(spread)} seeds"}
    for key in ("recall_at_1", "oracle_recall_at_p99", "decision_recall"):
        values = [r[key] for r in spread]
        out[key] = [round(float(np.mean(values)), 4), min(values), max(values)]
    print(json.dumps(out), flush=True)
    return out


def grid_rows(scored: dict[str, np.ndarray], fit_maps: np.ndarray, pool: bool, dims: list[int],
              cosines: np.ndarray, ids: np.ndarray, config: LocalRerank, row) -> list[dict]:
    """The PCA / pooling / int8 grid: every map made smaller the same way on both sides."""
    maps = (scored["item_maps"], scored["photo_maps"], fit_maps)
    item_maps, photo_maps, fit = (pooled(m) for m in maps) if pool else maps
    locations, out = item_maps.shape[1], []
    for d in [None, *dims]:
        basis = None if d is None else pca_basis(fit, d)
        gallery_side, photo_side = projected(item_maps, basis, True), projected(photo_maps, basis, False)
        similarity = rerank(cosines, ids, photo_side, gallery_side, replace(config, locations=locations))
        out.append(row(f"{locations} locations x {d or item_maps.shape[2]} int8", similarity,
                       locations * (d or item_maps.shape[2])))
    return out

if __name__ == "__main__":
    main()
