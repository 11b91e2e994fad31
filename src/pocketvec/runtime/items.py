"""Item datasets: which image files show which registered item (no torch, no decoding of pixels).

Three layouts, detected automatically (or forced with `layout=`):

- ``flat``: a folder of item images, one image = one item; label = path relative to the folder
  without its suffix (``flags/chad.png`` -> ``flags/chad``). Sub-folders are searched.
- ``folders``: one sub-folder per item holding one or more images; label = the sub-folder's name.
  Detected when no image lies directly in the folder, every image lies exactly one level down and
  at least one sub-folder holds two or more images.
- ``manifest``: a CSV file with a header ``path,label`` (relative paths resolve against the CSV's
  folder); given as the CSV path, or as a folder containing ``manifest.csv``.

Files that are not images by suffix (README, LICENSES.md) are skipped in folder layouts; in a
manifest every row must name an existing image. Duplicate images (same bytes) are reported as
groups and with a warning, never silently merged.
"""

from __future__ import annotations

import csv
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pocketvec.errors import DatasetError, ImageLoadError
from pocketvec.runtime.images import IMAGE_SUFFIXES, content_hash, is_image_path, probe_image

Layout = Literal["flat", "folders", "manifest"]
LAYOUTS: tuple[str, ...] = ("flat", "folders", "manifest")
MANIFEST_NAME = "manifest.csv"


@dataclass(frozen=True)
class ItemImage:
    """One image file and the label of the item it shows."""

    path: Path
    label: str


@dataclass(frozen=True)
class ItemDataset:
    """The images of a dataset in a fixed order, with the duplicate groups found among them."""

    root: Path
    layout: str
    entries: tuple[ItemImage, ...]
    duplicates: tuple[tuple[Path, ...], ...] = ()

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ItemImage]:
        return iter(self.entries)

    def __getitem__(self, index: int) -> ItemImage:
        return self.entries[index]

    @property
    def labels(self) -> tuple[str, ...]:
        """Distinct labels in order of first appearance."""
        return tuple(dict.fromkeys(entry.label for entry in self.entries))


def load_items(source: str | Path, layout: str | None = None, check_images: bool = True) -> ItemDataset:
    """Read an item dataset from a folder or CSV manifest; `layout=None` detects it."""
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    if layout is not None and layout not in LAYOUTS:
        raise DatasetError(f"unknown dataset layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}")
    chosen = layout or detect_layout(source)
    if chosen == "manifest":
        manifest = source / MANIFEST_NAME if source.is_dir() else source
        root, entries = manifest.parent, _read_manifest(manifest)
    else:
        if not source.is_dir():
            raise DatasetError(f"{source}: layout {chosen!r} needs a folder")
        root, entries = source, _scan_folder(source, chosen)
    if not entries:
        raise DatasetError(f"{source}: no images found (suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})")
    if check_images:
        for entry in entries:
            check_image_header(entry.path)
    dupes = find_duplicates([entry.path for entry in entries])
    if dupes:
        listed = "; ".join(" = ".join(str(p) for p in group) for group in dupes)
        warnings.warn(f"{len(dupes)} groups of identical images in {source}: {listed}", stacklevel=2)
    return ItemDataset(root=root, layout=chosen, entries=tuple(entries), duplicates=dupes)


def detect_layout(source: Path) -> str:
    """Guess the layout of `source` (see the module docstring for the rules)."""
    if source.is_file():
        if source.suffix.lower() == ".csv":
            return "manifest"
        raise DatasetError(f"{source}: a dataset is a folder of images or a .csv manifest")
    if (source / MANIFEST_NAME).is_file():
        return "manifest"
    images = _image_files(source)
    depths = {len(p.relative_to(source).parts) for p in images}
    if depths == {2}:
        per_folder: dict[str, int] = defaultdict(int)
        for p in images:
            per_folder[p.parent.name] += 1
        if max(per_folder.values()) >= 2:
            return "folders"
    return "flat"


def check_image_header(path: Path) -> None:
    """Cheap check (header only) that `path` is an image `load_image` would accept."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing image file")
    try:
        probe_image(path)
    except ImageLoadError as e:
        raise DatasetError(str(e)) from e


def find_duplicates(paths: Sequence[Path]) -> tuple[tuple[Path, ...], ...]:
    """Groups of files with identical bytes (by `content_hash`), each group in input order."""
    by_hash: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        try:
            by_hash[content_hash(path)].append(path)
        except ImageLoadError:
            continue  # an unreadable file is reported, by name, where its pixels are read; the rest go on
    return tuple(tuple(group) for group in by_hash.values() if len(group) > 1)


def _image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, sorted, skipping hidden files and hidden folders."""
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative):
            continue
        if path.is_file() and is_image_path(path):
            found.append(path)
    return sorted(found)


def _scan_folder(folder: Path, layout: str) -> list[ItemImage]:
    images = _image_files(folder)
    if layout == "folders":
        stray = [p for p in images if len(p.relative_to(folder).parts) != 2]
        if stray:
            raise DatasetError(f"{stray[0]}: layout 'folders' needs every image exactly one folder deep")
        return [ItemImage(p, p.parent.name) for p in images]
    entries = [ItemImage(p, p.relative_to(folder).with_suffix("").as_posix()) for p in images]
    seen: dict[str, Path] = {}
    for entry in entries:
        if entry.label in seen:
            raise DatasetError(
                f"{entry.path}: label {entry.label!r} also used by {seen[entry.label]} "
                "(in a flat folder one image is one item; use one sub-folder per item instead)"
            )
        seen[entry.label] = entry.path
    return entries


def _read_manifest(manifest: Path) -> list[ItemImage]:
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{manifest}: cannot read the CSV manifest ({e})") from e
    if rows and not {"path", "label"} <= set(header):
        raise DatasetError(f"{manifest}: the CSV header must contain 'path' and 'label'. Got {list(header)}.")
    entries = []
    for line, row in enumerate(rows, start=2):
        raw_path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not raw_path or not label:
            raise DatasetError(f"{manifest}, line {line}: empty path or label")
        path = Path(raw_path) if Path(raw_path).is_absolute() else manifest.parent / raw_path
        if not is_image_path(path):
            raise DatasetError(f"{path} ({manifest}, line {line}): not an image file by its suffix")
        if not path.is_file():
            raise DatasetError(f"{path} ({manifest}, line {line}): missing image file")
        entries.append(ItemImage(path, label))
    return entries
