"""`fetch_set`: build one public set into its cache folder, idempotently and resumably.

Items that exist are kept; missing ones are rendered in the plan's order until the set (or `limit`
items) is complete. Blank renders and byte-identical duplicates are skipped and remembered in the
manifest. A full fetch ends with a `.done` marker and drops the unpacked package files.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pocketvec.atomic import atomic_output
from pocketvec.data import render
from pocketvec.data.rcc import read_rcc_entry
from pocketvec.data.render_glyphs import render_glyph_sheet
from pocketvec.data.sources import DONE_MARKER, MANIFEST_NAME, SourceSpec, cache_root, get_source, read_manifest
from pocketvec.data.sources.packages import copyright_text, download, package_version, require_tool, unpack
from pocketvec.data.sources.parts import iconify_svg, read_zip_entry
from pocketvec.data.sources.plan import PlannedItem, plan_items, render_order
from pocketvec.errors import DatasetError
from pocketvec.file_lock import exclusive_lock
from pocketvec.runtime.images import content_hash

LOCK_TIMEOUT_S = 6 * 3600.0  # a full fetch of a large set on a busy machine can take hours
_TOOLS = {"pdf": [("pdfinfo", "count PDF pages"), ("pdftoppm", "render PDF pages")],
          "svg": [("rsvg-convert", "render SVG images")], "svg-parts": [("rsvg-convert", "render SVG images")],
          "iconify": [("rsvg-convert", "render SVG images")]}


@dataclass(frozen=True)
class FetchResult:
    name: str
    folder: Path
    items: int
    rendered: int
    skipped: int
    complete: bool


def _write_manifest(folder: Path, manifest: dict) -> None:
    with atomic_output(folder / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _render_item(spec: SourceSpec, item: PlannedItem, out: Path) -> str | None:
    """Render one item to `out`; returns a reason when the source gives no usable item."""
    if spec.render == "pdf":
        render.render_pdf_page(item.source, item.page or 1, out, spec.long_side)
    elif spec.render in ("rcc", "zip"):
        read = read_rcc_entry if spec.render == "rcc" else read_zip_entry
        return _save_picture(spec, io.BytesIO(read(item.source, item.entry or "")), out, f"{item.source}:{item.entry}")
    elif spec.render == "glyphs":
        render_glyph_sheet(item.source, item.entry or "", out, spec.long_side, spec.options.get("size", 60))
    elif spec.render == "iconify":
        with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
            svg = Path(scratch) / "icon.svg"
            svg.write_text(iconify_svg(item.source, item.entry or ""))
            render.render_svg(svg, out, spec.long_side, spec.options.get("background"))
    elif spec.render == "svg-parts":
        render.render_svg_part(item.source, item.entry or "", out, spec.long_side)
    elif item.source.suffix.lower() in (".svg", ".svgz"):
        render.render_svg(item.source, out, spec.long_side, spec.options.get("background"))
    elif "min_side" in spec.options:
        return _save_picture(spec, item.source, out, str(item.source))
    else:
        render.convert_raster(item.source, out, spec.long_side)
    return "blank" if render.is_blank(out) else None


def _save_picture(spec: SourceSpec, source: Path | io.BytesIO, out: Path, where: str) -> str | None:
    """A raster picture (a file or the bytes of an archive member), unless smaller than the set's
    `min_side`; returns the reason when it gives no usable item."""
    try:
        with Image.open(source) as image:
            if min(image.size) < spec.options.get("min_side", 0):
                return f"too small ({image.width}x{image.height})"
            image.load()
            render.save_downscaled(image, out, spec.long_side, where)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{where}: not a readable image ({e})") from e
    return "blank" if render.is_blank(out) else None


def _prepare(spec: SourceSpec, root: Path, progress: Progress) -> tuple[list[PlannedItem], list[dict], list[Path]]:
    """Download and unpack the set's packages; the planned items, package records, unpack folders."""
    downloads, files, records, unpacked = root / "_packages", [], [], []
    for ref in spec.packages:
        task = progress.add_task(f"download {ref.name}", total=None)
        # sets that share a package download and unpack it one at a time
        with exclusive_lock(downloads / f"{ref.kind}-{ref.name.replace('/', '-')}", LOCK_TIMEOUT_S,
                            f"the package {ref.name}", DatasetError):
            package_file = download(ref, downloads)
            target = downloads / f"{package_file.name}.files"
            files.append((ref, unpack(ref, package_file, target)))
        records.append({"kind": ref.kind, "name": ref.name, "version": package_version(package_file),
                        "file": package_file.name, "copyright": copyright_text(target)})
        unpacked.append(target)
        progress.remove_task(task)
    items: list[PlannedItem] = []
    for _, paths in files:
        items += plan_items(spec, paths)
    return items, records, unpacked


def fetch_set(name: str, limit: int | None = None, root: Path | None = None,
              progress: Progress | None = None) -> FetchResult:
    """Build set `name` into `<root>/<name>/` (root: $POCKETVEC_CACHE); `limit` renders only N items.

    One process at a time builds a set (a lock file beside its folder): a second waits for it, then
    finds the items already there."""
    spec, root = get_source(name), root or cache_root()
    if limit is not None and limit < 1:
        raise DatasetError(f"--limit must be at least 1. Got {limit}.")
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / spec.name, LOCK_TIMEOUT_S, f"the set {spec.name}", DatasetError):
        return _fetch_locked(spec, root, limit, progress)


def _fetch_locked(spec: SourceSpec, root: Path, limit: int | None, progress: Progress | None) -> FetchResult:
    folder = root / spec.name
    if (folder / DONE_MARKER).is_file():
        manifest = read_manifest(folder)
        return FetchResult(spec.name, folder, len(manifest["items"]), 0, len(manifest["skipped"]), True)
    for tool, purpose in _TOOLS.get(spec.render, []):
        require_tool(tool, purpose)  # fail before downloading anything
    progress = progress or Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TimeRemainingColumn(), transient=False)
    with progress:
        items, records, unpacked = _prepare(spec, root, progress)
        if len({i.name for i in items}) != len(items):
            raise DatasetError(f"{spec.name}: two planned items share a name; please report this.")
        folder.mkdir(parents=True, exist_ok=True)
        manifest = read_manifest(folder)
        manifest.update(name=spec.name, role=spec.role, licence=spec.licence, description=spec.description,
                        long_side=spec.long_side, packages=[{k: v for k, v in r.items() if k != "copyright"}
                                                           for r in records])
        for record in records:
            if record["copyright"]:
                package = record["name"].rpartition("@")[0] if "@" in record["name"][1:] else record["name"]
                slug = package.removeprefix('@').replace('/', '-')
                (folder / f"COPYRIGHT-{slug}.txt").write_text(record["copyright"])
        hashes = {entry["sha256"]: n for n, entry in manifest["items"].items()}
        target = len(items) if limit is None else min(limit, len(items))
        rendered = done = 0
        if limit is None:
            target = len(items) - sum(name in manifest["skipped"] for name in (i.name for i in items))
        task = progress.add_task(f"{spec.name}", total=target)
        for item in render_order(items):
            if done >= target:
                break
            out = folder / f"{item.name}{spec.suffix}"
            if item.name in manifest["skipped"] and not out.exists():
                continue
            if not out.exists():
                try:
                    reason = _render_item(spec, item, out)
                except DatasetError as e:
                    reason = f"failed: {e}"
                rendered += 1
                digest = content_hash(out) if out.exists() else ""
                if reason is None and digest in hashes and hashes[digest] != item.name:
                    reason = f"duplicate of {hashes[digest]}"
                if reason is not None:
                    out.unlink(missing_ok=True)
                    manifest["skipped"][item.name] = reason
                    if limit is None:  # a full set shrinks by what it skips
                        progress.update(task, total=len(items) - len(manifest["skipped"]))
                    continue
            entry = manifest["items"].get(item.name) or {"sha256": content_hash(out)}
            inside_package = str(item.source).split(".files/", 1)[-1]
            entry.update(file=out.name, source=inside_package, page=item.page, entry=item.entry)
            manifest["items"][item.name] = entry
            hashes.setdefault(entry["sha256"], item.name)
            done += 1
            progress.advance(task)
            if rendered and rendered % 25 == 0:
                _write_manifest(folder, manifest)
        complete = limit is None or done >= len(items) - len(manifest["skipped"])
        manifest.update(complete=complete, limit=limit, planned=len(items))  # planned: the full set's items
        _write_manifest(folder, manifest)
    if complete:
        (folder / DONE_MARKER).write_text(f"{done} items\n")
        for path in unpacked:
            shutil.rmtree(path, ignore_errors=True)
    return FetchResult(spec.name, folder, done, rendered, len(manifest["skipped"]), complete)
