"""Labelled query photos for `calibrate` and `eval`: simulated phone photos of an item folder,
written one folder per label (out/<label>/photo_000.jpg ...).

The photos come from the benchmark photo simulator (pocketvec.data.query_sim), not the training
augmentation: a model is trained to be invariant to exactly the augmentation's transforms, so
photos made by that code would flatter it, and an accept rule calibrated on them would be too
loose for real photos. The simulator is a separate code path (perspective, lighting, shadow,
glare, blur, noise, JPEG) with a fixed seed: photo k of an item depends only on (seed, label, k). They are
framed as a phone takes them (3:4 or 9:16, 640 px, portrait or landscape whatever the item's shape): a rule
calibrated on photos framed to the item alone held too little precision on phone-framed photos (docs/lab).

Distractors (images of things that are not enrolled) are photographed the same way and written
under out/not_an_item/: a label that is in no gallery, so `calibrate` and `eval` count them as
photos whose right answer is "unknown".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pocketvec.data.photo_framing import DEFAULT_FRAMING
from pocketvec.errors import ConfigError, DatasetError

NOT_AN_ITEM = "not_an_item"
PHONE_LONG_SIDE = 640  # a phone photo's long side after the app's downscale


@dataclass(frozen=True)
class PhotoSet:
    out: Path
    items: int
    item_photos: int
    distractor_images: int
    distractor_photos: int


def write_query_photos(items: str | Path, out: str | Path, per_item: int, distractors: str | Path | None = None,
                       seed: int = 0, overwrite: bool = False, progress: bool = False,
                       framing: str = DEFAULT_FRAMING) -> PhotoSet:
    """`per_item` simulated photos of every item of `items` (a folder or CSV manifest, one image per
    item or several), and `per_item` photos of every image of `distractors` under out/not_an_item/;
    `framing` "phone" (the default) or "item" (the benchmark's photos: 4:3, along the item, 480 px)."""
    from pocketvec.asset_dirs import backgrounds_dir
    from pocketvec.data.query_backgrounds import wallpaper_paths
    from pocketvec.data.query_sim import PhotoSimConfig, query_rng, simulate_photo
    from pocketvec.runtime.enroll import labelled_images
    from pocketvec.runtime.images import is_image_path, load_image
    from pocketvec.runtime.progress import progress_bar

    if per_item < 1:
        raise ConfigError(f"--per-item must be at least 1. Got {per_item}.")
    sim = PhotoSimConfig(framing=framing) if framing == "item" else PhotoSimConfig(PHONE_LONG_SIDE, framing=framing)
    out = Path(out)
    entries = labelled_images(items)
    if NOT_AN_ITEM in {label for _, label in entries}:
        raise DatasetError(f"{items}: an item is labelled {NOT_AN_ITEM!r}, the folder name reserved for distractors")
    others = _distractor_images(Path(distractors)) if distractors is not None else []
    _check_out(out, overwrite)
    wallpapers = wallpaper_paths() or sorted(p for p in backgrounds_dir().iterdir() if is_image_path(p))
    jobs = _jobs(entries, others, per_item)
    with progress_bar(f"phone photos -> {out}", len(jobs), progress) as advance:
        for path, name, key in jobs:  # key: what the photo's random draws depend on
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(simulate_photo(load_image(path), query_rng(seed, key, 0), wallpapers, sim))
            advance(1)
    labels = {label for _, label in entries}
    return PhotoSet(out, len(labels), len(entries) * per_item, len(others), len(others) * per_item)


def _jobs(entries: list[tuple[Path, str]], others: list[Path], per_item: int) -> list[tuple[Path, str, str]]:
    """(source image, file to write under out/, seed key) of every photo; an item with several
    images gets per_item photos of each, numbered on."""
    jobs, count = [], Counter[str]()
    for path, label in entries:
        for k in range(per_item):
            jobs.append((path, f"{label}/photo_{count[label]:03d}.jpg", f"{label}/{path.name}/{k}"))
            count[label] += 1
    jobs += [(path, f"{NOT_AN_ITEM}/{path.stem}_{k:03d}.jpg", f"{NOT_AN_ITEM}/{path.name}/{k}")
             for path in others for k in range(per_item)]
    return jobs


def _distractor_images(folder: Path) -> list[Path]:
    from pocketvec.runtime.images import is_image_path

    if not folder.is_dir():
        raise DatasetError(f"{folder}: the distractor folder does not exist or is not a folder")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))
    if not paths:
        raise DatasetError(f"{folder}: no images found for distractors")
    return paths


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} is not empty: its old photos would mix with the new ones. "
                          "Choose another --out, or pass --overwrite to write over photos of the same names.")
