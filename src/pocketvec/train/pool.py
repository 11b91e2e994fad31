"""The `base` training pool: a CSV manifest (path,label) over sets fetched by `pocketvec data fetch`.

Never the benchmark sets (humanities-docs, flag-icons). Files are picked with a seeded shuffle so the
same cache gives the same pool. Usage: python -m pocketvec.train.pool OUT.csv [SET=COUNT ...]
"""

from __future__ import annotations

import csv
import os
import random
import sys
from pathlib import Path

from pocketvec.errors import DatasetError
from pocketvec.runtime.images import is_image_path

DEFAULT_POOL = {"latex-docs": 320, "kgeography-flags": 160, "wesnoth-portraits": 80, "gcompris-photos": 40}
BENCHMARK_SETS = ("humanities-docs", "flag-icons")


def cache_root() -> Path:
    root = os.environ.get("POCKETVEC_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "pocketvec"


def write_pool_manifest(out: str | Path, counts: dict[str, int] | None = None, seed: int = 0) -> Path:
    out = Path(out)
    rows = []
    for name, count in (counts or DEFAULT_POOL).items():
        if name in BENCHMARK_SETS:
            raise DatasetError(f"{name} is a benchmark set and never part of the training pool")
        folder = cache_root() / name
        files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p)) if folder.is_dir() else []
        if not files:
            raise DatasetError(f"{folder}: no images; run `pocketvec data fetch {name}` first")
        random.Random(f"{seed}-{name}").shuffle(files)
        rows += [(str(p.resolve()), f"{name}/{p.relative_to(folder).with_suffix('')}") for p in files[:count]]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    tmp.replace(out)
    return out


if __name__ == "__main__":
    counts = {k: int(v) for k, v in (arg.split("=") for arg in sys.argv[2:])} or None
    print(write_pool_manifest(sys.argv[1], counts))
