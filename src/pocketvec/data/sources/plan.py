"""Which items a set is made of, and in which order they are rendered.

The order is what makes `--limit N` meaningful: documents (or resource files) take turns, and within
a document the pages are taken in a spread-out order (first, middle, quarters, ...), so any prefix
of the order samples evenly across documents. A limited fetch is a prefix of the full one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pocketvec.data.rcc import rcc_entries
from pocketvec.data.render import pdf_page_count
from pocketvec.data.render_glyphs import sheet_entries
from pocketvec.data.sources.parts import iconify_names, svg_part_ids, zip_entries
from pocketvec.data.sources.spec import SourceSpec


@dataclass(frozen=True)
class PlannedItem:
    name: str  # output file stem (flat: no folders, so one image = one item)
    group: str  # the document/resource file it belongs to
    source: Path
    page: int | None = None  # PDFs: 1-based page
    entry: str | None = None  # .rcc: path of the file inside the resource


def spread_order(n: int) -> list[int]:
    """0..n-1 ordered so that every prefix is spread evenly (van der Corput over the index range)."""
    order, seen, k = [], set(), 0
    while len(order) < n:
        value, denom, i = 0.0, 1.0, k
        while i:
            denom *= 2
            value += (i & 1) / denom
            i >>= 1
        index = min(int(value * n), n - 1)
        if index not in seen:
            seen.add(index)
            order.append(index)
        k += 1
    return order


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "item"


def _relative_names(files: list[Path]) -> list[str]:
    """Flat, unique names: the path below the files' common folder, '/' -> '--', suffix dropped."""
    if not files:
        return []
    common = Path(*Path(files[0]).parent.parts)
    for f in files[1:]:
        while common not in f.parents:
            common = common.parent
    return ["--".join(_slug(part) for part in f.relative_to(common).with_suffix("").parts) for f in files]


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if not count else f"{name}-{count + 1}")
    return out


def _largest_variants(files: list[Path]) -> list[Path]:
    """One file per wallpaper: the largest of the size variants in the same images folder."""
    best: dict[Path, tuple[int, Path]] = {}
    for f in files:
        key = f.parent if f.parent.name.startswith("images") else f
        try:
            with Image.open(f) as image:
                pixels = image.width * image.height
        except (OSError, ValueError):
            pixels = 0  # svg or unreadable: kept; rendering decides
        if key not in best or pixels > best[key][0]:
            best[key] = (pixels, f)
    return sorted(f for _, f in best.values())


def _page_count(doc: Path) -> int:
    """pdfinfo's page count, remembered next to the unpacked document so re-planning is instant."""
    memo = doc.with_name(f".{doc.name}.pages")
    if memo.is_file():
        return int(memo.read_text())
    pages = pdf_page_count(doc)
    memo.write_text(str(pages))
    return pages


def plan_items(spec: SourceSpec, files: list[Path]) -> list[PlannedItem]:
    """Every item of the full set, in a fixed order (documents sorted, pages ascending)."""
    if spec.render == "pdf":
        items = []
        for doc, name in zip(files, _unique(_relative_names(files)), strict=True):
            pages = _page_count(doc)
            count = min(pages, spec.max_pages_per_document)
            chosen = sorted({int(p) for p in np.round(np.linspace(1, pages, count))}) if count else []
            items += [PlannedItem(f"{name}--p{p:04d}", name, doc, page=p) for p in chosen]
        return items
    if spec.render == "rcc":
        items = []
        for rcc in files:
            entries = rcc_entries(rcc, tuple(spec.options.get("photo_suffixes", (".jpg",))))
            names = _unique([f"{_slug(rcc.stem)}--{_slug(Path(e).stem)}" for e in entries])
            items += [PlannedItem(n, rcc.stem, rcc, entry=e) for n, e in zip(names, entries, strict=True)]
        return items
    if spec.render in _PART_LISTERS:
        items = []
        for source, name in zip(files, _unique(_relative_names(files)), strict=True):
            entries = _PART_LISTERS[spec.render](spec, source)
            names = _unique([f"{name}--{_slug(_entry_stem(spec, e))}" for e in entries])
            items += [PlannedItem(n, name, source, entry=e) for n, e in zip(names, entries, strict=True)]
        return items
    if spec.options.get("largest_variant_only"):
        files = _largest_variants(files)
    files = _distinct_files(files)
    return [PlannedItem(name, name, f) for f, name in zip(files, _unique(_relative_names(files)), strict=True)]


def _entry_stem(spec: SourceSpec, entry: str) -> str:
    """The item name part of an entry: a glyph sheet's first code point, a member's path without suffix."""
    if spec.render == "glyphs":
        return "u" + entry.split()[0]
    return str(Path(entry).with_suffix("")).replace("/", "--") if spec.render == "zip" else entry


def _distinct_files(files: list[Path]) -> list[Path]:
    """The files with distinct bytes (packages install one picture under several folders)."""
    seen: set[str] = set()
    out = []
    for f in files:
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append(f)
    return out


# sets whose items are parts of a file: the part names ("entries") of one file
_PART_LISTERS: dict[str, Callable[[SourceSpec, Path], list[str]]] = {
    "glyphs": lambda spec, font: sheet_entries(font, spec.options.get("per_sheet", 36), spec.max_pages_per_document),
    "svg-parts": lambda spec, svg: svg_part_ids(svg, spec.options["part_pattern"]),
    "iconify": lambda spec, json_file: iconify_names(json_file),
    "zip": lambda spec, archive: zip_entries(archive, tuple(spec.options.get("photo_suffixes", (".jpg",))),
                                             spec.options.get("min_bytes", 0)),
}


def render_order(items: list[PlannedItem]) -> list[PlannedItem]:
    """Groups take turns (in spread order); within a group items come in spread order."""
    groups: dict[str, list[PlannedItem]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    keys = list(groups)
    keys = [keys[i] for i in spread_order(len(keys))]
    queues = {k: [groups[k][i] for i in spread_order(len(groups[k]))] for k in keys}
    ordered: list[PlannedItem] = []
    for round_index in range(max((len(q) for q in queues.values()), default=0)):
        ordered += [queues[k][round_index] for k in keys if round_index < len(queues[k])]
    return ordered
