"""The public benchmark: four tiers of clean gallery images with simulated query photos, in two splits.

- pages: document pages of the cached `humanities-docs` set, spread evenly across documents;
- flags: flags of the `flag-icons` set, spread across the sorted list;
- lookalikes: the look-alike stress tier (`pocketvec.bench.lookalikes`): groups of near-identical
  pages and flags that differ in small printed details;
- labels: the label-editions tier (`pocketvec.bench.label_editions`): wine-like labels of our own
  making, each design in five editions that differ in one printed field.

None of these sources is ever used for training. Two splits, with their own items and photo seeds
(`split_items` says which items; no item is in both, and `build_benchmark` refuses a dev split that
has one):

- **test** (`TEST`, the default): what is reported, and only reported. 150 pages (the first of the
  set's render order), 150 flags, 25 page groups and 26 flag groups of look-alikes, 40 label designs
  (200 items); photo seed `--seed` (0). Built in `<work>/<tier>/`.
- **dev** (`DEV`): what settings are chosen on. Smaller, to stay cheap: 100 pages (those that follow
  the test's in the render order, leaving out the pages the test's look-alike groups may use), 100
  flags (of those no test tier uses: flag-icons has 257, the test uses 150; fewer when fewer are
  free, as the tier summary says), 20 page groups (the manuals after the test's 25 in spread order;
  a group never uses a test page), 20 flag groups (of the flags no test tier uses) and 30 label designs
  (their own design seed and producers' names: `label_editions.producer_names`); photo seed
  `--seed` + `DEV_SEED_OFFSET` (1). Built in `<work>/dev/<tier>/`. A dev split always follows the
  default test split, whatever its own sizes, so it fetches both sets in full (which items the test
  holds is only known from the complete sets).

Each tier is its own gallery (a user's catalogue): `gallery/` holds one clean image per item;
`queries/` the simulator's photos, named `<label>--q<k>.jpg`; `calibration/` the photos a user would
calibrate the accept rule on (`pocketvec data photos` of the gallery: `calibration_photos`). Everything
is a pure function of the cache, the counts and the seed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rich.progress import Progress

from pocketvec.atomic import atomic_output
from pocketvec.bench.backgrounds import BENCH_BACKGROUNDS, wallpaper_paths
from pocketvec.bench.label_editions import (
    LABEL_SEEDS,
    LabelConfig,
    build_label_editions,
    label_identity,
    producer_names,
)
from pocketvec.bench.lookalikes import (
    LookalikeConfig,
    LookalikePicks,
    build_lookalikes,
    flag_identity,
    group_pages,
    lookalike_manuals,
    page_identity,
    spread_pick,
)
from pocketvec.bench.simulator import PhotoSimConfig, query_rng, simulate_photo
from pocketvec.bounded_json import read_json
from pocketvec.data.sources import read_manifest
from pocketvec.data.sources.fetch import fetch_set
from pocketvec.data.sources.plan import PlannedItem, render_order
from pocketvec.errors import ConfigError, DatasetError
from pocketvec.runtime.images import load_image

TIERS = ("pages", "flags", "lookalikes", "labels")
TIER_SETS = {"pages": "humanities-docs", "flags": "flag-icons"}
SPLITS = ("test", "dev")
DEV_SEED_OFFSET = 1  # dev photos: --seed + 1, so a dev photo is never drawn like a test photo
CALIBRATION_SEED = 0  # the seed `pocketvec data photos` uses unless told otherwise


@dataclass(frozen=True)
class BenchConfig:
    pages: int = 150
    flags: int = 150
    lookalike_page_groups: int = 25  # x 5 look-alike pages
    lookalike_flag_groups: int = 26  # x 5 flag editions
    label_designs: int = 40  # x 5 label editions
    queries_per_item: int = 5
    seed: int = 0
    full_fetch: bool = True  # fetch the complete sets first, so the selection never depends on the cache state
    split: str = "test"  # "test" (reported) or "dev" (for choosing settings): see the module docstring
    calibration_photos: int = 4  # `data photos` per item that the decision rule is calibrated on

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}. Got {self.split!r}.")
        if self.calibration_photos < 1:
            raise ConfigError(f"calibration_photos must be at least 1. Got {self.calibration_photos}.")

    @property
    def photo_seed(self) -> int:
        """The seed of the benchmark's query photos: `seed` for test, `seed + DEV_SEED_OFFSET` for dev."""
        return self.seed + (DEV_SEED_OFFSET if self.split == "dev" else 0)


TEST = BenchConfig()  # the reported benchmark; a dev split takes none of its items
DEV = BenchConfig(pages=100, flags=100, lookalike_page_groups=20, lookalike_flag_groups=20, label_designs=30,
                  split="dev")


def split_folder(work: Path, split: str) -> Path:
    """Where a split's tiers (and results.json) go: `work` itself for test, as before the dev split; `work/dev`."""
    return work if split == "test" else work / split


@dataclass(frozen=True)
class BenchSet:
    gallery_dir: Path
    gallery_paths: list[Path]
    gallery_labels: list[str]
    query_paths: list[Path]
    query_labels: list[str]
    backgrounds: str  # what the simulator composited onto
    calibration_paths: list[Path]  # `data photos` of the gallery: what the decision rule is calibrated on
    calibration_labels: list[str]
    notes: tuple[str, ...] = ()  # how the tier differs from what was asked (a dev tier with fewer free items)

    def summary(self) -> dict:
        summary = {"items": len(self.gallery_labels), "queries": len(self.query_labels),
                   "calibration_photos": len(self.calibration_labels), "backgrounds": self.backgrounds}
        return {**summary, "notes": list(self.notes)} if self.notes else summary


def _planned(set_name: str, root: Path | None, limit: int | None) -> list[PlannedItem]:
    """The cached items of a set (fetched first, `limit` of them or all), sorted by name."""
    result = fetch_set(set_name, limit=limit, root=root)
    manifest = read_manifest(result.folder)
    return [PlannedItem(name, entry["source"], result.folder / entry["file"], entry.get("page"))
            for name, entry in sorted(manifest["items"].items())
            if (result.folder / entry["file"]).is_file()]


def select_items(set_name: str, count: int, root: Path | None, full_fetch: bool) -> list[Path]:
    """`count` item images of a cached set, spread across its documents (deterministic): the test split's."""
    planned = _planned(set_name, root, None if full_fetch else count)
    if len(planned) < count:
        raise DatasetError(f"{set_name} has {len(planned)} items in the cache; the benchmark asked for {count}.")
    return [item.source for item in render_order(planned)[:count]]


@dataclass(frozen=True)
class SplitItems:
    """What one split is made of, by identity (`identities`), and the seed of its photos."""

    split: str
    photo_seed: int
    pages: list[PlannedItem]  # the pages tier (group: the document inside the package)
    flags: list[PlannedItem]  # the flags tier
    lookalike_manuals: list[tuple[str, int]]  # (document, page count) of each look-alike page group
    lookalike_flags: list[str]  # the flag of each look-alike flag group
    avoid_pages: tuple[str, ...] = ()  # pages of the look-alike manuals a group never uses (the test's)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per tier: fewer items than asked, and why
    label_names: list[str] = field(default_factory=list)  # the producer of each label design
    label_seed: int | None = None  # the label designs' seed

    def identities(self) -> set[str]:
        """Every page (`<document>#p<page>`), flag (`flag-icons/<name>`) and label producer
        (`label-editions/<name>`) the split may show. A page group counts every page it may use
        (`group_pages`), not only the two it will: which ones depends on rendering (blank pages are passed over)."""
        found = {page_identity(item.group, item.page) for item in self.pages}  # type: ignore[arg-type]
        found |= {flag_identity(item.name) for item in self.flags} | {flag_identity(n) for n in self.lookalike_flags}
        found |= {label_identity(name) for name in self.label_names}
        group = {page_identity(doc, page) for doc, count in self.lookalike_manuals for page in group_pages(count)}
        return found | (group - set(self.avoid_pages))

    def picks(self) -> LookalikePicks:
        return LookalikePicks(self.split, tuple(doc for doc, _ in self.lookalike_manuals),
                              tuple(self.lookalike_flags), self.avoid_pages)


def split_items(config: BenchConfig, pages: list[PlannedItem], flags: list[PlannedItem],
                manuals: list[tuple[str, int]]) -> SplitItems:
    """The items of `config`'s split from the complete lists (no files are read): `pages` and `flags` the
    sets' items sorted by name, `manuals` (document, page count) of the manuals long enough for a page
    group, sorted. The dev split follows the default test split (`TEST`) whatever its own sizes."""
    test_config = config if config.split == "test" else replace(TEST, seed=config.seed)
    test = SplitItems("test", test_config.photo_seed, render_order(pages)[: test_config.pages],
                      render_order(flags)[: test_config.flags],
                      spread_pick(manuals, 0, test_config.lookalike_page_groups),
                      spread_pick([item.name for item in flags], 0, test_config.lookalike_flag_groups),
                      label_names=producer_names("test", test_config.label_designs), label_seed=LABEL_SEEDS["test"])
    if config.split == "test":
        return test
    taken = test.identities()
    later_pages = [item for item in render_order(pages)[len(test.pages):]
                   if page_identity(item.group, item.page) not in taken]  # type: ignore[arg-type]
    free_flags = [item for item in flags if flag_identity(item.name) not in taken]
    dev_manuals = spread_pick(manuals, len(test.lookalike_manuals), config.lookalike_page_groups)
    avoid = sorted(taken & {page_identity(doc, page) for doc, count in dev_manuals for page in group_pages(count)})
    dev = SplitItems("dev", config.photo_seed, later_pages[: config.pages], render_order(free_flags)[: config.flags],
                     dev_manuals, spread_pick([item.name for item in free_flags], 0, config.lookalike_flag_groups),
                     tuple(avoid), label_names=producer_names("dev", config.label_designs),
                     label_seed=LABEL_SEEDS["dev"])
    shortfalls = (
        ("pages", len(dev.pages), config.pages, "pages", f"{len(later_pages)} follow the test's"),
        ("flags", len(dev.flags), config.flags, "flags", f"{len(free_flags)} are in no test tier"),
        ("lookalikes", len(dev.lookalike_manuals), config.lookalike_page_groups, "page groups",
         f"{max(0, len(manuals) - len(test.lookalike_manuals))} manuals are in no test group"),
        ("lookalikes", len(dev.lookalike_flags), config.lookalike_flag_groups, "flag groups",
         f"{len(free_flags)} flags are in no test tier"))
    notes: dict[str, tuple[str, ...]] = {}
    for tier, got, asked, what, why in shortfalls:
        if got < asked:
            notes[tier] = (*notes.get(tier, ()), f"dev split: {got} {what} of the {asked} asked (only {why})")
    return replace(dev, notes=notes)


def check_disjoint(dev: SplitItems, test: SplitItems) -> None:
    """Raise when the dev split shares an item (a label producer included), its photo seed or its label designs'
    seed with the test split."""
    shared = sorted(dev.identities() & test.identities())
    same_labels = dev.label_seed is not None and dev.label_seed == test.label_seed
    if shared or dev.photo_seed == test.photo_seed or same_labels:
        raise DatasetError(f"the dev split must share no item and no seed with the test split; it shares "
                           f"{len(shared)} items ({', '.join(shared[:5])}), photo seed {dev.photo_seed} "
                           f"vs {test.photo_seed}, label seed {dev.label_seed} vs {test.label_seed}.")


def _config_key(config: BenchConfig, sim: PhotoSimConfig, backgrounds: list[Path], labels: list[str]) -> str:
    fields = asdict(config)
    del fields["calibration_photos"]  # the calibration photos have their own stamp
    del fields["label_designs"]  # the labels tier's item names (in the key) say its designs; other tiers' keys stay
    if config.split == "test":
        del fields["split"]  # the key of a test tier is what it was before the dev split: its photos stay valid
    simulated = sim.to_dict()
    if sim.framing == "item":
        del simulated["framing"]  # the benchmark's framing: its photos are those made before the field existed
    blob = json.dumps([fields, simulated, [p.name for p in backgrounds], labels], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def tier_items(tier: str, config: BenchConfig, root: Path | None) -> list[tuple[str, Path]]:
    """(label, clean image) of every item of one tier of the test split; [] when the config asks for none."""
    if tier == "lookalikes":
        looks = LookalikeConfig(config.lookalike_page_groups, config.lookalike_flag_groups)
        if not looks.items:
            return []
        folder = build_lookalikes(looks, root, config.full_fetch)
        return [(p.stem, p) for p in sorted(folder.glob("*.png"))]
    if tier == "labels":
        return _label_items(LabelConfig(config.label_designs, "test"), root)
    count = config.pages if tier == "pages" else config.flags
    return [(p.stem, p) for p in select_items(TIER_SETS[tier], count, root, config.full_fetch)] if count else []


def dev_tier_items(config: BenchConfig, root: Path | None) -> tuple[dict[str, list[tuple[str, Path]]], dict]:
    """(label, clean image) of every item of each tier of the dev split, and the tiers' notes.

    Raises when a dev item is a test item, also after the look-alike pages are rendered."""
    pages, flags = _planned(TIER_SETS["pages"], root, None), _planned(TIER_SETS["flags"], root, None)
    manuals = lookalike_manuals(root) if config.lookalike_page_groups else []
    dev, test = split_items(config, pages, flags, manuals), split_items(replace(TEST, seed=config.seed), pages,
                                                                       flags, manuals)
    check_disjoint(dev, test)
    tiers = {"pages": [(item.name, item.source) for item in dev.pages],
             "flags": [(item.name, item.source) for item in dev.flags], "lookalikes": [],
             "labels": _label_items(LabelConfig(len(dev.label_names), "dev"), root, test)}
    looks = LookalikeConfig(len(dev.lookalike_manuals), len(dev.lookalike_flags))
    if looks.items:
        folder = build_lookalikes(looks, root, picks=dev.picks())
        made = read_json(folder / "manifest.json", "lookalike set manifest")["items"].values()
        shown = {page_identity(m["document"], m["page"]) if "document" in m else m["source"] for m in made}
        shared = sorted(shown & test.identities())
        if shared:
            raise DatasetError(f"{folder}: the dev look-alikes show test items: {', '.join(shared[:5])}.")
        tiers["lookalikes"] = [(p.stem, p) for p in sorted(folder.glob("*.png"))]
    return tiers, dev.notes


def _label_items(config: LabelConfig, root: Path | None, test: SplitItems | None = None) -> list[tuple[str, Path]]:
    """(label, clean image) of every item of a split's label-editions set; [] for no designs. Raises when a
    design's producer is one of `test`'s (given for the dev split), as the set's manifest says."""
    if not config.designs:
        return []
    folder = build_label_editions(config, root)
    if test is not None:
        designs = read_json(folder / "manifest.json", "label set manifest")["designs"].values()
        shared = sorted({label_identity(design["name"]) for design in designs} & test.identities())
        if shared:
            raise DatasetError(f"{folder}: the dev label designs have test producers: {', '.join(shared[:5])}.")
    return [(p.stem, p) for p in sorted(folder.glob("*.png"))]


def build_benchmark(work: Path, config: BenchConfig, sim: PhotoSimConfig = PhotoSimConfig(),
                    root: Path | None = None, progress: Progress | None = None) -> dict[str, BenchSet]:
    """Every tier the config asks for, each built in `<split folder>/<tier>/` (`split_folder`)."""
    if config.full_fetch:
        fetch_set(BENCH_BACKGROUNDS, root=root)
    wallpapers = wallpaper_paths(root)
    notes: dict = {}
    if config.split == "test":
        tiers = {tier: tier_items(tier, config, root) for tier in TIERS}
    else:
        tiers, notes = dev_tier_items(config, root)
    folder = split_folder(work, config.split)
    return {tier: build_tier(folder / tier, items, config, sim, wallpapers, progress, notes.get(tier, ()))
            for tier, items in tiers.items() if items}


def calibration_photos(work: Path, gallery_dir: Path, labels: list[str], per_item: int,
                       key: str) -> tuple[list[Path], list[str]]:
    """`pocketvec data photos` of the gallery, `per_item` per item with its default seed, as a user makes
    them to calibrate the accept rule: made once into `work/calibration/` (again when `key` changes)."""
    from pocketvec.data.photo_framing import DEFAULT_FRAMING
    from pocketvec.data.query_photos import write_query_photos

    folder, stamp = work / "calibration", work / "calibration.json"
    wanted = {"key": key, "per_item": per_item, "seed": CALIBRATION_SEED, "framing": DEFAULT_FRAMING,
              "backgrounds": [p.name for p in wallpaper_paths()]}  # those `data photos` composites onto
    if not stamp.is_file() or read_json(stamp, "calibration stamp") != wanted:
        stamp.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        write_query_photos(gallery_dir, folder, per_item, seed=CALIBRATION_SEED)
        stamp.write_text(json.dumps(wanted, indent=1))
    return ([folder / label / f"photo_{k:03d}.jpg" for label in labels for k in range(per_item)],
            [label for label in labels for _ in range(per_item)])


def build_tier(work: Path, items: list[tuple[str, Path]], config: BenchConfig, sim: PhotoSimConfig,
               wallpapers: list[Path], progress: Progress | None = None, notes: tuple[str, ...] = ()) -> BenchSet:
    """Copy the items into `work/gallery/`, simulate `work/queries/` and `work/calibration/` (reused when
    unchanged)."""
    key = _config_key(config, sim, wallpapers, [label for label, _ in items])
    gallery_dir, query_dir = work / "gallery", work / "queries"
    stamp = work / "benchmark.json"
    if not stamp.is_file() or read_json(stamp, "benchmark stamp").get("key") != key:
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
                data = simulate_photo(image, query_rng(config.photo_seed, label, k), wallpapers, sim)
                with atomic_output(path) as tmp:
                    tmp.write_bytes(data)
            query_paths.append(path)
            query_labels.append(label)
        if progress and task is not None:
            progress.advance(task)
    if progress and task is not None:
        progress.remove_task(task)
    stamp.write_text(json.dumps({"key": key, "config": asdict(config), "photo_seed": config.photo_seed,
                                 "simulator": sim.to_dict()}, indent=1))
    labels = [label for label, _ in items]
    task = progress.add_task(f"{work.name}: calibration photos (data photos)", total=None) if progress else None
    calibration = calibration_photos(work, gallery_dir, labels, config.calibration_photos, key)
    if progress and task is not None:
        progress.remove_task(task)
    backgrounds = "synthetic clutter"
    if wallpapers:
        backgrounds = f"{len(wallpapers)} GNOME backgrounds (80%; never used by training) + synthetic clutter"
    return BenchSet(gallery_dir, gallery_paths, labels, query_paths, query_labels, backgrounds, *calibration,
                    notes=tuple(notes))
