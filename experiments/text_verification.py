"""How much does text verification (runtime/text_verify.py) help on a tier, and at which weight and window?
The gallery is built as `gallery build` builds it (views, the model's photos' crop, each item's text read),
photos are matched as the matcher matches them (re-rank, then text), the rule is calibrated on the tier's
`calibration/` photos scored the same way. Each setting is scored on the tier's photos: Recall@1, the oracle
recall at precision >= 0.99, the calibrated rule's precision / recall, the share of photos read. On dev tiers
it chooses; on test tiers it only reports.

    python experiments/text_verification.py MODEL.onnx WORK/dev/labels [--every 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import applied, calibration_photos, gallery_items, query_photos

from pocketvec.bench.texts import TierTexts
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import embed_items
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.matcher import scores
from pocketvec.runtime.metrics import recall_at_k
from pocketvec.runtime.printed_text import PhotoTexts
from pocketvec.runtime.text_reader import DEFAULT_MODELS
from pocketvec.runtime.text_verify import TextVerify


class AskedTexts(PhotoTexts):
    """PhotoTexts that keeps which photos were asked for."""

    asked: set[int] = set()  # noqa: RUF012 (replaced per setting)

    def read(self, q: int) -> str:
        self.asked = self.asked | {q}
        return super().read(q)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--models", default=DEFAULT_MODELS, help="OCR models")
    parser.add_argument("--every", type=int, default=1, help="score every n-th tier photo")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4])
    parser.add_argument("--windows", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    engine = open_engine(args.model, "auto", 1)
    meta = engine.metadata
    cache = TierTexts(args.tier, args.models)  # the texts `pocketvec bench` read, read here when it did not
    rows, hashes = embed_items(engine, args.tier / "gallery")
    gallery = Gallery.for_model(meta)
    gallery.add(rows.embeddings, rows.labels, hashes, rows.locals, meta, cache.items(rows.paths), args.models)
    labels = gallery.labels
    photos, photo_labels = query_photos(args.tier)
    photo_sets = {"calibration": calibration_photos(args.tier, gallery_items(args.tier)[1]),
                  "tier": (photos[::args.every], photo_labels[::args.every])}
    found = {name: engine.embed_all(images, query=True) for name, (images, _) in photo_sets.items()}
    texts = {}
    for name, (images, _) in photo_sets.items():
        known = cache.photos(images)
        texts[name] = AskedTexts(known.photos, args.models, texts=known.texts)
    results = []
    settings = [TextVerify(weight, window) for weight in args.weights for window in args.windows]
    for setting in [None, *settings]:
        matched = {}
        for name in photo_sets:
            reader = texts[name]
            reader.settings, reader.asked = setting or TextVerify(), set()
            matched[name] = scores(gallery, found[name].embeddings, found[name].locals, meta.local_rerank,
                                   reader if setting else None)
        rule = calibrate(matched["calibration"], photo_sets["calibration"][1], labels, 0.99).rule
        tier_labels = photo_sets["tier"][1]
        oracle = calibrate(matched["tier"], tier_labels, labels, 0.99)
        result = {"text": None if setting is None else [setting.weight, setting.window],
                  "recall_at_1": round(recall_at_k(matched["tier"], tier_labels, labels, 1), 4),
                  "oracle": round(oracle.chosen.recall if oracle.target_reached else 0.0, 4),
                  "calibrated": [round(v, 4) for v in applied(matched["tier"], tier_labels, labels,
                                                              rule.threshold, rule.margin)],
                  "read_share": round(len(texts["tier"].asked) / len(tier_labels), 4)}
        results.append(result)
        print(json.dumps(result), flush=True)
        if setting == TextVerify():
            wrong = [(tier_labels[q], labels[int(np.argmax(row))], texts["tier"].texts.get(q, "-"))
                     for q, row in enumerate(matched["tier"]) if labels[int(np.argmax(row))] != tier_labels[q]]
            result["wrong"] = wrong
    for name in texts:
        cache.keep(texts[name])
    if args.out:
        args.out.write_text(json.dumps({"items_texts": dict(zip(labels, gallery.texts, strict=True)),
                                        "results": results}, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
