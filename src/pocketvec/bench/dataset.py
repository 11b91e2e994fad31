"""The public benchmark: clean gallery images of document pages and flags, simulated query photos.

Items come from the cached `humanities-docs` and `flag-icons` sets (fetched if missing; never used
for training). Pages are chosen spread evenly across documents, flags spread across the sorted list.
The gallery folder holds one clean image per item; `queries/` holds the simulator's photos, named
`<label>--q<k>.jpg`. Everything is a pure function of the cache, the counts and the seed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.progress import Progress

from pocketvec.atomic import atomic_output
from pocketvec.bench.backgrounds import wallpaper_paths
from pocketvec.bench.simulator import PhotoSimConfig, query_rng, simulate_photo
from pocketvec.data.source_fetch import fetch_set
from pocketvec.data.source_plan import PlannedItem, render_order
from pocketvec.data.sources import read_manifest
from pocketvec.errors import DatasetError
from pocketvec.runtime.images import load_image

BENCH_SETS = (("pages", "humanities-docs"), ("flags", "flag-icons"))


@dataclass(frozen=True)
class BenchConfig:
    pages: int = 150
    flags: int = 150
    queries_per_item: int = 5
    seed: int = 0
    full_fetch: bool = True  # fetch the complete sets first, so the selection never depends on the cache state


@dataclass(frozen=True)
class BenchSet:
    gallery_dir: Path
    gallery_paths: list[Path]
    gallery_labels: list[str]
    query_paths: list[Path]
    query_labels: list[str]
    backgrounds: str  # what the simulator composited onto

    def summary(self) -> dict:
        kinds = {prefix: sum(label.startswith(prefix + "--") for label in self.gallery_labels)
                 for prefix, _ in BENCH_SETS}
        return {"items": len(self.gallery_labels), **kinds, "queries": len(self.query_labels),
                "backgrounds": self.backgrounds}


def select_items(set_name: str, count: int, root: Path | None, full_fetch: bool) -> list[Path]:
    """`count` item images of a cached set, spread across its documents (deterministic)."""
    result = fetch_set(set_name, limit=None if full_fetch else count, root=root)
    manifest = read_manifest(result.folder)
    planned = [PlannedItem(name, entry["source"], result.folder / entry["file"], entry.get("page"))
               for name, entry in sorted(manifest["items"].items())
               if (result.folder / entry["file"]).is_file()]
    if len(planned) < count:
        raise DatasetError(f"{set_name} has {len(planned)} items in {result.folder}; the benchmark asked for {count}.")
    return [item.source for item in render_order(planned)[:count]]


def _config_key(config: BenchConfig, sim: PhotoSimConfig, backgrounds: list[Path]) -> str:
    blob = json.dumps([asdict(config), sim.to_dict(), [p.name for p in backgrounds]], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_benchmark(work: Path, config: BenchConfig, sim: PhotoSimConfig = PhotoSimConfig(),
                    root: Path | None = None, progress: Progress | None = None) -> BenchSet:
    """Select the items, copy them into `work/gallery/`, simulate `work/queries/` (reused when unchanged)."""
    items: list[tuple[str, Path]] = []
    for prefix, set_name in BENCH_SETS:
        count = config.pages if prefix == "pages" else config.flags
        if count:
            items += [(f"{prefix}--{p.stem}", p) for p in select_items(set_name, count, root, config.full_fetch)]
    if config.full_fetch:
        fetch_set("wallpapers", root=root)
    wallpapers = wallpaper_paths(root)
    key = _config_key(config, sim, wallpapers)
    gallery_dir, query_dir = work / "gallery", work / "queries"
    stamp = work / "benchmark.json"
    if not stamp.is_file() or json.loads(stamp.read_text()).get("key") != key:
        for folder in (gallery_dir, query_dir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
    gallery_paths, query_paths, query_labels = [], [], []
    task = progress.add_task("simulate query photos", total=len(items)) if progress else None
    for label, source in items:
        target = gallery_dir / f"{label}{source.suffix}"
        if not target.is_file():
            with atomic_output(target) as tmp:
                shutil.copyfile(source, tmp)
        gallery_paths.append(target)
        image = None
        for k in range(config.queries_per_item):
            path = query_dir / f"{label}--q{k}.jpg"
            if not path.is_file():
                image = load_image(source) if image is None else image
                data = simulate_photo(image, query_rng(config.seed, label, k), wallpapers, sim)
                with atomic_output(path) as tmp:
                    tmp.write_bytes(data)
            query_paths.append(path)
            query_labels.append(label)
        if progress and task is not None:
            progress.advance(task)
    stamp.write_text(json.dumps({"key": key, "config": asdict(config), "simulator": sim.to_dict()}, indent=1))
    backgrounds = "synthetic clutter"
    if wallpapers:
        backgrounds = f"{len(wallpapers)} cached wallpapers (80%) + synthetic clutter"
    return BenchSet(gallery_dir, gallery_paths, [label for label, _ in items], query_paths, query_labels, backgrounds)
