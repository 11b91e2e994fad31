"""What the experiments share: the command line (a model and a benchmark tier folder) and the tier's files.

A tier folder is what `pocketvec bench` builds: gallery/ (one PNG per item, label = file name), queries/
(LABEL--qN.jpg photos) and calibration/LABEL/ (the `data photos` the accept rule is calibrated on).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def parse_model_and_tier(doc: str | None) -> argparse.Namespace:
    """`MODEL TIER [--out JSON]` with `doc` as the help text."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def gallery_items(tier: Path) -> tuple[list[Path], list[str]]:
    paths = sorted((tier / "gallery").glob("*.png"))
    return paths, [p.stem for p in paths]


def query_photos(tier: Path) -> tuple[list[Path], list[str]]:
    paths = sorted((tier / "queries").glob("*.jpg"))
    return paths, [re.sub(r"--q\d+$", "", p.stem) for p in paths]


def calibration_photos(tier: Path, labels: list[str]) -> tuple[list[Path], list[str]]:
    paths = [p for label in labels for p in sorted((tier / "calibration" / label).glob("*.jpg"))]
    return paths, [p.parent.name for p in paths]
