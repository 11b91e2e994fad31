"""Which crop should the zoom's second pass embed the item's region with? The first pass sees the whole photo
(a phone's 3:4 or 9:16 frame, or the benchmark's 4:3 along the item); the second sees the region the local maps
locate, which is about the item's own shape. Each way is `FIRST:SECOND`, a crop (or `fused`: `scale_fill` and
`center_crop` averaged) for each pass; the gallery's views are embedded with FIRST, as the product embeds them
with the photos' crop. Everything else as `Recognizer` answers (views, zoom, re-rank); the rule is calibrated
(0.99) on phone-framed `data photos` and applied to the tier's photos and to validation-simulator photos. The
photo folders are calibration_framing.py's (run it first). Choose on dev tiers only.

    python experiments/second_pass_crop.py MODEL.onnx WORK/dev/lookalikes --ways center_crop:center_crop \
        center_crop:scale_fill
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
from calibration_framing import photo_folders
from common import print_way

from pocketvec import Recognizer
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines.base import Engine
from pocketvec.runtime.enroll import embed_labelled, query_layout
from pocketvec.runtime.matcher import scores
from pocketvec.runtime.zoomed_photos import zoom_to_items

FUSED = ("scale_fill", "center_crop")


def with_crop(engine: Engine, crop: str) -> Engine:
    """`engine` with the photos embedded with `crop` (`fused`: both)."""
    other = copy.copy(engine)
    spec = engine.metadata.preprocess
    other.metadata = replace(engine.metadata, preprocess=replace(spec, query_crop_mode=FUSED if crop == "fused"
                                                                  else crop))
    return other


class SecondPass:
    """The first pass's engine, but for the photos it embeds again (the zoom's second pass)."""

    def __init__(self, first: Engine, second: Engine) -> None:
        self.first, self.second = first, second

    def __getattr__(self, name: str):
        return getattr(self.first, name)

    def embed_all(self, *args, **kwargs):
        return self.second.embed_all(*args, **kwargs)


def scored(recognizer: Recognizer, second: Engine, folder: Path) -> tuple[np.ndarray, list[str]]:
    engine, gallery = recognizer.engine, recognizer.gallery
    found = embed_labelled(engine, folder, layout=query_layout(folder), query=True)
    found, _ = zoom_to_items(SecondPass(engine, second), gallery, found, found.paths,  # type: ignore[arg-type]
                             recognizer.item_zoom)
    return scores(gallery, found.embeddings, found.locals, engine.metadata.local_rerank), found.labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--ways", nargs="+", required=True)
    args = parser.parse_args()
    folders = photo_folders(args.tier, args.tier / "framing", 4)
    base = Recognizer(args.model, text=False)
    for way in args.ways:
        first, second = way.split(":")
        recognizer = Recognizer(args.model, text=False)
        recognizer.engine = with_crop(base.engine, first)
        recognizer.enroll(args.tier / "gallery", progress=False)
        second_engine = with_crop(base.engine, second)
        sets = {name: scored(recognizer, second_engine, folders[name])
                for name in ("calibration phone", "tier", "validation")}
        labels = recognizer.gallery.labels
        rule = calibrate(*sets["calibration phone"], labels, 0.99).rule
        for photos in ("tier", "validation"):
            print_way(way, photos, sets[photos][0], sets[photos][1], labels, rule)


if __name__ == "__main__":
    main()
