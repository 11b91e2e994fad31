"""The public benchmark: three tiers of clean gallery images with simulated query photos.

- pages: document pages of the cached `humanities-docs` set, spread evenly across documents;
- flags: flags of the `flag-icons` set, spread across the sorted list;
- lookalikes: the look-alike stress tier (`pocketvec.bench.lookalikes`): groups of near-identical
  pages and flags that differ in small printed details.

None of these sources is ever used for training. Each tier is its own gallery (a user's catalogue)
in `<work>/<tier>/`: `gallery/` holds one clean image per item; `queries/` the simulator's photos,
named `<label>--q<k>.jpg`. Everything is a pure function of the cache, the counts and the seed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.progress import Progress

from pocketvec.atomic import atomic_output
from pocketvec.bench.backgrounds import BENCH_BACKGROUNDS, wallpaper_paths
from pocketvec.bench.lookalikes import LookalikeConfig, build_lookalikes
from pocketvec.bench.simulator import PhotoSimConfig, query_rng, simulate_photo
from pocketvec.data.source_fetch import fetch_set
from pocketvec.data.source_plan import PlannedItem, render_order
from pocketvec.data.sources import read_manifest
from pocketvec.errors import DatasetError
from pocketvec.runtime.images import load_image

TIERS = ("pages", "flags", "lookalikes")
TIER_SETS = {"pages": "humanities-docs", "flags": "flag-icons"}


@dataclass(frozen=True)
class BenchConfig:
    pages: int = 150
    flags: int = 150
    lookalike_page_groups: int = 25  # x 5 look-alike pages
    lookalike_flag_groups: int = 26  # x 5 flag editions
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
        return {"items": len(self.gallery_labels), "queries": len(self.query_labels), "backgrounds": self.backgrounds}


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


def _config_key(config: BenchConfig, sim: PhotoSimConfig, backgrounds: list[Path], labels: list[str]) -> str:
    blob = json.dumps([asdict(config), sim.to_dict(), [p.name for p in backgrounds], labels], sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def tier_items(tier: str, config: BenchConfig, root: Path | None) -> list[tuple[str, Path]]:
    """(label, clean image) of every item of one tier; [] when the config asks for none."""
    if tier == "lookalikes":
        looks = LookalikeConfig(config.lookalike_page_groups, config.lookalike_flag_groups)
        if not looks.items:
            return []
        folder = build_lookalikes(looks, root, config.full_fetch)
        return [(p.stem, p) for p in sorted(folder.glob("*.png"))]
    count = config.pages if tier == "pages" else config.flags
    return [(p.stem, p) for p in select_items(TIER_SETS[tier], count, root, config.full_fetch)] if count else []


def build_benchmark(work: Path, config: BenchConfig, sim: PhotoSimConfig = PhotoSimConfig(),
                    root: Path | None = None, progress: Progress | None = None) -> dict[str, BenchSet]:
    """Every tier the config asks for, each built in `work/<tier>/`."""
    if config.full_fetch:
        fetch_set(BENCH_BACKGROUNDS, root=root)
    wallpapers = wallpaper_paths(root)
    tiers = {tier: tier_items(tier, config, root) for tier in TIERS}
    return {tier: build_tier(work / tier, items, config, sim, wallpapers, progress)
            for tier, items in tiers.items() if items}


def build_tier(work: Path, items: list[tuple[str, Path]], config: BenchConfig, sim: PhotoSimConfig,
               wallpapers: list[Path], progress: Progress | None = None) -> BenchSet:
    """Copy the items into `work/gallery/`, simulate `work/queries/` (reused when unchanged)."""
    key = _config_key(config, sim, wallpapers, [label for label, _ in items])
    gallery_dir, query_dir = work / "gallery", work / "queries"
    stamp = work / "benchmark.json"
    if not stamp.is_file() or json.loads(stamp.read_text()).get("key") != key:
        for folder in (gallery_dir, query_dir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
    gallery_paths, query_paths, query_labels = [], [], []
    task = progress.add_task(f"{work.name}: simulate query photos", total=len(items)) if progress else None
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
    if progress and task is not None:
        progress.remove_task(task)
    stamp.write_text(json.dumps({"key": key, "config": asdict(config), "simulator": sim.to_dict()}, indent=1))
    backgrounds = "synthetic clutter"
    if wallpapers:
        backgrounds = f"{len(wallpapers)} GNOME backgrounds (80%; never used by training) + synthetic clutter"
    return BenchSet(gallery_dir, gallery_paths, [label for label, _ in items], query_paths, query_labels, backgrounds)
