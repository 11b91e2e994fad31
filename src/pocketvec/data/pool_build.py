"""The rows of a training pool: items of fetched training sets, guarded and deduplicated.

`pool_rows` takes N items (or all) of each named set with a seeded shuffle, so the same cache gives the
same pool; `pool_guard` refuses what is not a training set and drops benchmark items; `pool_dedupe`
drops byte copies and gives near-identical pictures across sets one label.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from pocketvec.data.pool_dedupe import DedupeResult, Row, dedupe_rows
from pocketvec.data.pool_guard import benchmark_hashes, check_pool_set
from pocketvec.data.sources import SOURCES, cache_root, read_manifest
from pocketvec.errors import DatasetError
from pocketvec.runtime.images import is_image_path


@dataclass(frozen=True)
class PoolRows:
    rows: list[Row]
    dedupe: DedupeResult | None
    per_set: dict[str, int]  # rows per set after deduplication
    per_kind: dict[str, int]

    @property
    def classes(self) -> int:
        return len({label for _, label in self.rows})


def training_sets() -> list[str]:
    """Every set a pool may use, in catalogue order."""
    return [name for name, spec in SOURCES.items() if spec.role == "training"]


def _set_rows(name: str, folder: Path, count: int | None, seed: int,
              excluded_labels: re.Pattern[str] | None) -> tuple[list[Row], dict[str, str]]:
    listed = {entry.get("file") for entry in read_manifest(folder)["items"].values()} if folder.is_dir() else set()
    # a set's items are those its manifest lists (never a half-written file of a fetch in progress);
    # a folder without a manifest (items put there by hand) gives all its images
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p) and not p.name.startswith(".")
                   and (not listed or p.name in listed)) if folder.is_dir() else []
    if not files:
        raise DatasetError(f"{folder}: no images; run `pocketvec data fetch {name}` first")
    random.Random(f"{seed}-{name}").shuffle(files)
    labelled = ((p, f"{name}/{p.relative_to(folder).with_suffix('')}") for p in files)
    rows = [(str(p.resolve()), label) for p, label in labelled
            if not (excluded_labels and excluded_labels.fullmatch(label))][:count]
    known = {entry.get("file"): entry.get("sha256") for entry in read_manifest(folder)["items"].values()}
    hashes = {path: known[Path(path).name] for path, _ in rows if known.get(Path(path).name)}
    return rows, hashes


def pool_rows(counts: dict[str, int | None], seed: int = 0, root: Path | None = None,
              excluded_labels: re.Pattern[str] | None = None, dedupe: bool = True) -> PoolRows:
    """Up to `counts[name]` items of each set (None: all of them), checked and deduplicated."""
    root = root or cache_root()
    rows: list[Row] = []
    hashes: dict[str, str] = {}
    kinds: dict[str, str] = {}
    set_of: dict[str, str] = {}  # path -> its set (a relabelled copy keeps counting for its own set)
    for name, count in counts.items():
        spec = check_pool_set(name)
        set_rows, set_hashes = _set_rows(name, root / name, count, seed, excluded_labels)
        rows += set_rows
        set_of.update((path, name) for path, _ in set_rows)
        hashes.update(set_hashes)
        kinds[name] = spec.kind or "other"
    result = None
    if dedupe:
        console = Console(stderr=True)  # stdout: the pool's report; no bar where it cannot redraw (a log)
        with Progress(transient=True, console=console, disable=not console.is_terminal) as progress:
            task = progress.add_task("pool: thumbnails for the duplicate check", total=len(rows))
            result = dedupe_rows(rows, hashes, benchmark_hashes(root), on_image=lambda: progress.advance(task))
        rows = result.rows
    per_set = Counter(set_of[path] for path, _ in rows)
    per_kind: Counter[str] = Counter()
    for name, n in per_set.items():
        per_kind[kinds[name]] += n
    return PoolRows(rows, result, dict(per_set), dict(per_kind))
