"""How small can the re-rank's local maps get (issue: catalogue scale)? A gallery row keeps its item's map,
14 x 14 locations x 112 float16 channels (43.9 KB); photos are matched as the matcher matches them (gallery
views, re-rank), with each map made smaller the same way on both sides:

- channels projected to d by a PCA fitted on ANOTHER tier's item maps (never the tier scored), renormalised;
- locations pooled 2 x 2 (7 x 7) before the projection, or not;
- values stored as int8 (x 127, the gallery's unit-vector codec) or float16;
- or each location product-quantised (faiss, m sub-vectors of 8 bits, codebooks fitted on the other tier):
  m bytes per location, the photo's map kept exact (asymmetric distances).

Reported per variant on the tier's photos: bytes per item (int8 embedding included), Recall@1 and the best
recall at precision >= 0.99 (oracle), beside the full maps' and no re-rank.

    python experiments/compact_local_maps.py MODEL.onnx WORK/dev/lookalikes --fit WORK/dev/labels
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import gallery_items, query_photos

from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery.views import GalleryViews, blend_views, view_photos
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.runtime.local_rerank import label_ids, rerank
from pocketvec.runtime.metrics import recall_at_k


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--fit", type=Path, required=True, help="the tier whose item maps the PCA is fitted on")
    parser.add_argument("--dims", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--pq", type=int, nargs="+", default=[8, 16], help="sub-quantisers per location")
    parser.add_argument("--pq-weights", type=float, nargs="+", default=[4.0], help="re-rank weights for PQ maps")
    parser.add_argument("--no-grid", action="store_true", help="only the PQ variants (and the references)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    engine = open_engine(args.model, "auto", 2)
    scored = embedded(engine, args.tier, args.tier / "compact-maps-cache.npz")
    fit_cache = args.fit / "compact-maps-fit.npz"
    if not fit_cache.is_file():
        np.savez(fit_cache, maps=engine.embed_all(gallery_items(args.fit)[0]).locals)
    fit_maps = np.load(fit_cache, allow_pickle=False)["maps"]
    labels = gallery_items(args.tier)[1]
    photo_labels = query_photos(args.tier)[1]
    ids, config = label_ids(labels), engine.metadata.local_rerank
    cosines = scored["photos"] @ scored["rows"].T
    dim = scored["rows"].shape[1]

    def row(name: str, similarity: np.ndarray, map_bytes: int) -> dict:
        oracle = calibrate(similarity, photo_labels, labels, 0.99)
        out = {"variant": name, "bytes_per_item": dim + map_bytes,
               "recall_at_1": round(recall_at_k(similarity, photo_labels, labels, 1), 4),
               "oracle_recall_at_p99": round(oracle.chosen.recall if oracle.target_reached else 0.0, 4)}
        print(json.dumps(out), flush=True)
        return out

    rows = [row("no re-rank", cosines, 0),
            row("full maps, float16", rerank(cosines, ids, scored["photo_maps"], scored["item_maps"], config),
                scored["item_maps"][0].size * 2)]
    for pool in () if args.no_grid else (False, True):
        item_maps, photo_maps, fit = ((pooled(m) for m in (scored["item_maps"], scored["photo_maps"], fit_maps))
                                      if pool else (scored["item_maps"], scored["photo_maps"], fit_maps))
        locations = item_maps.shape[1]
        for d in [None, *args.dims]:
            basis = None if d is None else pca_basis(fit, d)
            gallery_side, photo_side = projected(item_maps, basis, True), projected(photo_maps, basis, False)
            similarity = rerank(cosines, ids, photo_side, gallery_side, replace(config, locations=locations))
            rows.append(row(f"{locations} locations x {d or item_maps.shape[2]} int8", similarity,
                            locations * (d or item_maps.shape[2])))
    for m in args.pq:
        decoded = product_quantised(scored["item_maps"], fit_maps, m)
        for weight in args.pq_weights:
            similarity = rerank(cosines, ids, scored["photo_maps"], decoded, replace(config, weight=weight))
            rows.append(row(f"196 locations, PQ {m} x 8 bits, re-rank weight {weight:g}", similarity,
                            scored["item_maps"].shape[1] * m))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
