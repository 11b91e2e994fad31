"""Diagnostic: one exported model's answers on a benchmark tier with each photos' crop (`scale_fill`,
`center_crop`), everything else as shipped (gallery views, re-rank, the rule calibrated on the tier's
`calibration/` photos, i.e. `data photos`). Never used to choose a setting: it says what a choice costs.

    python experiments/photos_crop_on_a_tier.py MODEL.onnx WORK/lookalikes
"""

from __future__ import annotations

import json
from dataclasses import replace

from common import applied, calibration_photos, parse_model_and_tier, query_photos

from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import embed_items
from pocketvec.runtime.gallery.views import GalleryViews
from pocketvec.runtime.local_rerank import label_ids, rerank
from pocketvec.runtime.metrics import recall_at_k


def main() -> None:
    args = parse_model_and_tier(__doc__)
    engine = open_engine(args.model, "auto", 2)
    spec = engine.metadata.preprocess
    queries, query_labels = query_photos(args.tier)
    for crop in ("scale_fill", "center_crop"):
        engine.metadata = replace(engine.metadata, preprocess=replace(spec, query_crop_mode=crop))
        rows, _ = embed_items(engine, args.tier / "gallery", views=GalleryViews())
        labels, ids = rows.labels, label_ids(rows.labels)

        def scores(found):
            return rerank(found.embeddings @ rows.embeddings.T, ids, found.locals, rows.locals,  # noqa: B023
                          engine.metadata.local_rerank)

        cal_paths, cal_labels = calibration_photos(args.tier, labels)
        rule = calibrate(scores(engine.embed_all(cal_paths, query=True)), cal_labels, labels, 0.99).rule
        matched = scores(engine.embed_all(queries, query=True))
        oracle = calibrate(matched, query_labels, labels, 0.99)
        print(json.dumps({"crop": crop, "recall_at_1": recall_at_k(matched, query_labels, labels, 1),
                          "oracle": oracle.chosen.recall if oracle.target_reached else 0.0,
                          "calibrated": applied(matched, query_labels, labels, rule.threshold, rule.margin)}),
              flush=True)


if __name__ == "__main__":
    main()
