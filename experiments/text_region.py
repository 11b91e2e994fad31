"""Read only the item's region (issue 38): does reading each photo's text from the region zoom to the item found
(`pocketvec.runtime.zoomed_photos.zoom_to_items`), grown by a margin, answer as well as reading the whole photo,
and how fast? The gallery is built as `gallery build` builds it (views, content boxes, each item's text: the
texts `pocketvec bench` read, reused: the newest texts-*.json in the tier, or --bench-texts), the photos are
zoomed and re-ranked as the matcher does, then verified by the text read each way; the rule is calibrated on the
tier's `calibration/` photos scored the same way. A way is `whole` (the photo, at most SIDE px long, never
enlarged: the runtime's reading before this study) or `region` (the item's region zoom found, grown by MARGIN %
of its sides on each side within the photo: `printed_text.text_box`; the whole photo where zoom found none), read
at most SIDE px long, or with `up` enlarged to SIDE first. Per way: Recall@1, the oracle recall at precision
>= 0.99, the calibrated rule's precision / recall, the share of photos read and the median time to read one
(decode, crop and read, one thread) over up to --timed read photos of the tier. On dev tiers it chooses; on test
tiers it only reports.

    python experiments/text_region.py MODEL.onnx WORK/dev/labels --ways whole:640 region:0:640 region:5:640 \
        region:5:320 region:5:up640 [--timed 60] [--cache texts.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from common import calibration_photos, print_way, query_photos

from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import embed_items
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.images import load_image
from pocketvec.runtime.item_zoom import ItemZoom, PhotoRegion
from pocketvec.runtime.matcher import scores
from pocketvec.runtime.printed_text import READ_MAX_SIDE, PhotoTexts, read_item_texts, read_text, text_box, text_reader
from pocketvec.runtime.text_reader import DEFAULT_MODELS
from pocketvec.runtime.zoomed_photos import zoom_to_items

Region = PhotoRegion | None


class Way:
    """How a photo's text is read: `whole` or `region:MARGIN`, at `SIDE` (at most) or `upSIDE` (enlarged)."""

    def __init__(self, name: str, models: str) -> None:
        parts = name.split(":")
        self.name, self.region = name, parts[0] == "region"
        self.margin = int(parts[1]) if self.region else 0
        side = parts[-1]
        self.enlarge, self.side = side.startswith("up"), int(side.removeprefix("up"))
        self.reader = text_reader(models, self.side)

    def image(self, path: Path, region: Region) -> np.ndarray:
        """The pixels read: the whole photo (decoded as the runtime reads it) or the grown region."""
        rgb = load_image(path, READ_MAX_SIDE)
        if self.region and region is not None:
            top, left, bottom, right = text_box(region, *rgb.shape[:2], self.margin)
            rgb = rgb[top:bottom, left:right]
        h, w = rgb.shape[:2]
        if self.enlarge and max(h, w) < self.side:
            scale = self.side / max(h, w)
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        return rgb

    def read(self, path: Path, region: Region) -> str:
        return read_text(self.reader, self.image(path, region))


class WayTexts(PhotoTexts):
    """PhotoTexts reading each photo one `Way`, remembering which photos were asked for."""

    def __init__(self, paths: list[Path], regions: list[Region], way: Way, known: dict[int, str]) -> None:
        super().__init__(list(paths), texts=dict(known))
        self.regions, self.way, self.asked = regions, way, set()

    def read(self, q: int) -> str:
        self.asked.add(q)
        if q not in self.texts:
            self.texts[q] = self.way.read(Path(self.photos[q]), self.regions[q])
        return self.texts[q]


def read_ms(ways: list[Way], paths: list[Path], regions: list[Region], count: int) -> list[float]:
    """Per way, the median ms to decode, crop and read one of up to `count` photos spread over `paths`, the ways
    taking turns on each photo (so that another job's load falls on all alike), after one warm-up read each."""
    chosen = [int(i) for i in np.linspace(0, len(paths) - 1, min(len(paths), count))]
    times: list[list[float]] = [[] for _ in ways]
    for way in ways:
        way.read(paths[chosen[0]], regions[chosen[0]])
    for q in chosen:
        for way, kept in zip(ways, times, strict=True):
            start = time.perf_counter()
            way.read(paths[q], regions[q])
            kept.append(time.perf_counter() - start)
    return [float(np.median(kept) * 1000) for kept in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--ways", nargs="+", default=["whole:640", "region:0:640", "region:5:640"])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="OCR models")
    parser.add_argument("--timed", type=int, default=60, help="read photos timed per way")
    parser.add_argument("--cache", type=Path, help="a JSON file keeping this study's readings between runs")
    parser.add_argument("--bench-texts", type=Path, help="the texts file `pocketvec bench` kept in the tier")
    args = parser.parse_args()
    engine = open_engine(args.model, "auto", 1)
    meta = engine.metadata
    bench_file = args.bench_texts or max(args.tier.glob(f"texts-{Path(args.models).name}-*.json"),
                                         key=lambda p: p.stat().st_mtime)
    bench_texts = json.loads(bench_file.read_text())  # what `pocketvec bench` read: items, whole photos at 640
    rows, hashes = embed_items(engine, args.tier / "gallery")
    gallery = Gallery.for_model(meta)
    item_texts = [bench_texts.get(f"item:{p.relative_to(args.tier).as_posix()}") for p in rows.paths]
    if None in item_texts:
        item_texts = read_item_texts(rows.paths, args.models)
    gallery.add(rows.embeddings, rows.labels, hashes, rows.locals, meta, item_texts, args.models, rows.boxes)
    labels = gallery.labels
    sets = {"calibration": calibration_photos(args.tier, sorted(set(labels))), "tier": query_photos(args.tier)}
    found = {name: zoom_to_items(engine, gallery, engine.embed_all(paths, query=True), paths, ItemZoom())
             for name, (paths, _) in sets.items()}
    for name, (paths, _) in sets.items():
        areas = [(box[2] - box[0]) * (box[3] - box[1]) / (height * width)
                 for box, height, width in filter(None, found[name][1])]
        print(json.dumps({"photos": name, "count": len(paths), "zoomed": len(areas),
                          "median_region_share": round(statistics.median(areas), 3) if areas else None}),
              flush=True)
    cache: dict[str, str] = json.loads(args.cache.read_text()) if args.cache and args.cache.is_file() else {}
    ways, read = [Way(name, args.models) for name in args.ways], set()
    for name, way in zip(args.ways, ways, strict=True):
        matched, asked = {}, {}
        for photos, (paths, _) in sets.items():
            (embedded, regions) = found[photos]
            keys = [f"{name}|{p.relative_to(args.tier).as_posix()}" for p in paths]
            known = {q: cache[k] for q, k in enumerate(keys) if k in cache}
            if name == "whole:640":  # as the bench read them
                known |= {q: bench_texts[f"photo:{k.split('|', 1)[1]}"] for q, k in enumerate(keys)
                          if f"photo:{k.split('|', 1)[1]}" in bench_texts}
            texts = WayTexts(paths, regions, way, known)
            matched[photos] = scores(gallery, embedded.embeddings, embedded.locals, meta.local_rerank, texts)
            asked[photos] = texts.asked
            cache.update({keys[q]: text for q, text in texts.texts.items()})
        if args.cache:
            args.cache.write_text(json.dumps(cache, ensure_ascii=False, sort_keys=True))
        rule = calibrate(matched["calibration"], sets["calibration"][1], labels, 0.99).rule
        print_way(name, "tier", matched["tier"], sets["tier"][1], labels, rule)
        print(json.dumps({"way": name, "read_share": round(len(asked["tier"]) / len(sets["tier"][0]), 4)}),
              flush=True)
        read |= asked["tier"]
    paths, regions = sets["tier"][0], found["tier"][1]
    timed = sorted(read)
    if timed:
        ms = read_ms(ways, [paths[q] for q in timed], [regions[q] for q in timed], args.timed)
        print(json.dumps({"median_read_ms": {name: round(t, 1) for name, t in zip(args.ways, ms, strict=True)},
                          "photos_timed": min(len(timed), args.timed)}), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
