"""The `base` training pool: a CSV manifest (path,label) over sets fetched by `pocketvec data fetch`.

Never a benchmark or background set, nor the sources of the embedded demo items (data/pool_guard.py).
Files are picked with a seeded shuffle so the same cache gives the same pool; the same picture in two
sets is one class (data/pool_dedupe.py).
`--compact DIR` also writes a small self-contained copy (WebP, long side 448 px, relative paths) to
carry to a training machine. Usage: python -m pocketvec.train.pool OUT.csv [SET=COUNT ... | all] [--compact DIR]
[--long-side PX]
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

from pocketvec.atomic import atomic_output
from pocketvec.data.pool_build import PoolRows, pool_rows, training_sets

DEFAULT_POOL = {"latex-docs": 320, "kgeography-flags": 160, "wesnoth-portraits": 80, "gcompris-photos": 40}
# every fetched item of every training set (`python -m pocketvec.train.pool OUT.csv all`)
FULL_POOL = dict.fromkeys(training_sets())
# the embedded demo items come from these files (src/pocketvec/assets/demo_items/LICENSES.md)
DEMO_SOURCES = re.compile(r"latex-docs/.*--(memman|microtype)--.*|kgeography-flags/(chad|romania|indonesia|monaco|"
                          r"poland|ireland|cote_divoire|italy|netherlands|luxembourg|mali|guinea)", re.IGNORECASE)


def write_pool_manifest(out: str | Path, counts: dict[str, int | None] | None = None, seed: int = 0,
                        dedupe: bool = True) -> Path:
    """The pool's CSV: `counts` items per set (None: all), never benchmark or demo items, duplicates
    across sets merged (data/pool_build.py)."""
    return write_manifest(Path(out), build_pool(counts, seed, dedupe).rows)


def build_pool(counts: dict[str, int | None] | None = None, seed: int = 0, dedupe: bool = True) -> PoolRows:
    return pool_rows(counts or DEFAULT_POOL, seed, excluded_labels=DEMO_SOURCES, dedupe=dedupe)


def write_manifest(out: Path, rows: list[tuple[str, str]]) -> Path:
    with atomic_output(out) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return out


def write_compact_pool(manifest: str | Path, out_dir: str | Path, long_side: int = 448, quality: int = 85) -> Path:
    """A small copy of a pool (WebP, at most `long_side` px) with a manifest of relative paths."""
    from PIL import Image

    from pocketvec.data.items import load_items
    from pocketvec.runtime.images import load_image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, item in enumerate(load_items(manifest)):
        name = f"{index:05d}.webp"
        Image.fromarray(load_image(item.path, long_side)).save(out_dir / name, "WEBP", quality=quality)
        rows.append((name, item.label))
    return write_manifest(out_dir / "manifest.csv", rows)


if __name__ == "__main__":
    args = sys.argv[2:]
    compact = args[args.index("--compact") + 1] if "--compact" in args else None
    long_side = int(args[args.index("--long-side") + 1]) if "--long-side" in args else 448
    counts = FULL_POOL if "all" in args else {k: int(v) for k, v in (a.split("=") for a in args if "=" in a)} or None
    manifest = write_pool_manifest(sys.argv[1], counts)
    print(manifest)
    if compact:
        print(write_compact_pool(manifest, compact, long_side))
