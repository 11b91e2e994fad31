"""Which `data photos` framing calibrates an accept rule that keeps its precision on phone photos? The rule is
calibrated (target 0.99) on `data photos` of the tier's gallery framed each way (`item`: 4:3 along the item, as
the benchmark's photos; `phone`: 3:4 / 9:16 held as a phone comes) and applied to the tier's own photos and to
validation-simulator photos (phone aspect, its own code). Everything as `Recognizer` answers: gallery views,
zoom to the item, the local re-rank (text verification off unless --text). Choose on dev tiers only.

    python experiments/calibration_framing.py MODEL.onnx WORK/dev/lookalikes [--per-item 4] [--text]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import print_way, query_photos

from pocketvec import Recognizer
from pocketvec.bench.dataset import CALIBRATION_SEED
from pocketvec.data.query_photos import write_query_photos
from pocketvec.data.validation_sim import validation_jpegs
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.enroll import embed_labelled, query_layout
from pocketvec.runtime.images import load_image
from pocketvec.runtime.matcher import scores
from pocketvec.runtime.zoomed_photos import zoom_to_items

VALIDATION_PHOTOS = 3


def photo_folders(tier: Path, out: Path, per_item: int) -> dict[str, Path]:
    """Folders of labelled photos (one sub-folder per label), made once under `out`."""
    folders = {f"calibration {framing}": out / f"calibration_{framing}" for framing in ("item", "phone")}
    for name, folder in folders.items():
        if not folder.is_dir():
            write_query_photos(tier / "gallery", folder, per_item, seed=CALIBRATION_SEED, framing=name.split()[1])
    folders["tier"] = out / "tier"
    if not folders["tier"].is_dir():
        for path, label in zip(*query_photos(tier), strict=True):
            (folders["tier"] / label).mkdir(parents=True, exist_ok=True)
            (folders["tier"] / label / path.name).symlink_to(path.resolve())
    folders["validation"] = out / "validation"
    if not folders["validation"].is_dir():
        for path in sorted((tier / "gallery").glob("*.png")):
            (folders["validation"] / path.stem).mkdir(parents=True)
            for k, data in enumerate(validation_jpegs(load_image(path), path.stem, VALIDATION_PHOTOS)):
                (folders["validation"] / path.stem / f"photo_{k:03d}.jpg").write_bytes(data)
    return folders


def scored(recognizer: Recognizer, folder: Path) -> tuple[np.ndarray, list[str]]:
    """The photos' scores against the gallery as `Recognizer.calibrate` scores them."""
    engine, gallery = recognizer.engine, recognizer.gallery
    found = embed_labelled(engine, folder, layout=query_layout(folder), query=True)
    found, regions = zoom_to_items(engine, gallery, found, found.paths, recognizer.item_zoom)
    return scores(gallery, found.embeddings, found.locals, engine.metadata.local_rerank,
                  recognizer._photo_texts(found.paths, regions)), found.labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--per-item", type=int, default=4)
    parser.add_argument("--text", action="store_true")
    args = parser.parse_args()
    recognizer = Recognizer(args.model, text=args.text)
    recognizer.enroll(args.tier / "gallery", progress=True)
    folders = photo_folders(args.tier, args.tier / "framing", args.per_item)
    sets = {name: scored(recognizer, folder) for name, folder in folders.items()}
    labels = recognizer.gallery.labels
    for name in ("calibration item", "calibration phone"):
        rule = calibrate(*sets[name], labels, 0.99).rule
        print(f"rule from {name}: threshold {rule.threshold} margin {rule.margin}", flush=True)
        for photos in ("tier", "validation", "calibration item", "calibration phone"):
            print_way(name, photos, sets[photos][0], sets[photos][1], labels, rule)


if __name__ == "__main__":
    main()
