"""The public item sets that `pocketvec data fetch` builds from Debian and npm packages.

Each set is a small frozen spec: where its files come from (packages, paths inside them), how an item
is made from a file (a PDF page, an SVG, a raster image) and what it may be used for. The cache holds
one item folder per set: `$POCKETVEC_CACHE/NAME/` (default ~/.cache/pocketvec/NAME/), one image per
item, plus `manifest.json` (provenance and licence) and a `.done` marker once a full fetch finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pocketvec.errors import ConfigError

MANIFEST_NAME = "manifest.json"
DONE_MARKER = ".done"


@dataclass(frozen=True)
class PackageRef:
    """One package to download: `kind` is "deb" (apt-get download) or "npm" (npm pack)."""

    kind: str
    name: str
    include: tuple[str, ...]  # glob patterns (relative to the package root) of the files to use
    exclude: tuple[str, ...] = ()  # glob patterns on the file name to leave out


@dataclass(frozen=True)
class SourceSpec:
    name: str
    role: str  # training | benchmark | backgrounds
    render: str  # pdf | svg | raster | rcc
    packages: tuple[PackageRef, ...]
    licence: str  # short SPDX-like summary; the full text is copied next to the items as COPYRIGHT-*.txt
    description: str
    long_side: int = 600  # output size: longest side in pixels (never upscaled for raster inputs)
    suffix: str = ".png"  # output format of each item
    max_pages_per_document: int = 30  # PDFs: evenly spaced pages per document, so a full fetch stays short
    options: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def origin(self) -> str:
        return ", ".join(f"{p.kind}:{p.name}" for p in self.packages)


_TEXLIVE_PDFS = ("usr/share/doc/texlive-doc/**/*.pdf",)

SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec(
            "latex-docs", "training", "pdf",
            (PackageRef("deb", "texlive-latex-recommended-doc", _TEXLIVE_PDFS),),
            "LPPL-1.3c et al. (per package)",
            "pages of the LaTeX manuals in texlive-latex-recommended-doc",
        ),
        SourceSpec(
            "humanities-docs", "benchmark", "pdf",
            (PackageRef("deb", "texlive-humanities-doc", _TEXLIVE_PDFS),),
            "LPPL-1.3c et al. (per package)",
            "pages of the texlive-humanities-doc manuals: the public benchmark, never for training",
        ),
        SourceSpec(
            "kgeography-flags", "training", "raster",
            (PackageRef("deb", "kgeography-data", ("usr/share/kgeography/flags/**/*.png",), ("blurred_*",)),),
            "GPL-2.0-or-later",
            "country and region flags of kgeography",
        ),
        SourceSpec(
            "flag-icons", "benchmark", "svg",
            (PackageRef("npm", "flag-icons@7.5.0", ("package/flags/4x3/*.svg",)),),
            "MIT",
            "country flags of the npm package flag-icons, 4:3 SVGs: the public benchmark",
        ),
        SourceSpec(
            "wesnoth-portraits", "training", "raster",
            (PackageRef("deb", "wesnoth-1.16-data",
                        ("usr/share/games/wesnoth/*/data/core/images/portraits/**/*.png",)),),
            "GPL-2.0-or-later",
            "unit portraits of Battle for Wesnoth 1.16",
        ),
        SourceSpec(
            "gcompris-photos", "training", "rcc",
            (PackageRef("deb", "gcompris-qt-data", ("usr/share/gcompris-qt/rcc/*.rcc",)),),
            "GPL-3.0+ / CC-BY-SA",
            "photographs inside the Qt resource files of GCompris activities",
            suffix=".jpg", options={"min_side": 200, "photo_suffixes": (".webp", ".jpg", ".jpeg")},
        ),
        SourceSpec(
            "wallpapers", "backgrounds", "raster",
            (PackageRef("deb", "plasma-workspace-wallpapers", ("usr/share/wallpapers/*/contents/images*/*",)),),
            "LGPL/GPL/CC-BY-SA (per image)",
            "KDE Plasma wallpapers: backgrounds of the training photos, never of the benchmark's",
            long_side=1280, suffix=".jpg", options={"largest_variant_only": True},
        ),
        SourceSpec(
            "bench-backgrounds", "benchmark", "raster",
            (PackageRef("deb", "gnome-backgrounds", ("usr/share/backgrounds/gnome/*",), ("*.xml",)),),
            "CC-BY-SA / GPL (per image)",
            "GNOME backgrounds: backgrounds of the benchmark's photos only, never of the training photos",
            long_side=1280, suffix=".jpg", options={"largest_variant_only": True},
        ),
    )
}


def source_names() -> list[str]:
    return list(SOURCES)


def get_source(name: str) -> SourceSpec:
    try:
        return SOURCES[name]
    except KeyError:
        raise ConfigError(f"Unknown data set {name!r}. Available: {', '.join(SOURCES)}.") from None


def cache_root() -> Path:
    """$POCKETVEC_CACHE, or ~/.cache/pocketvec."""
    env = os.environ.get("POCKETVEC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pocketvec"


def set_dir(name: str, root: Path | None = None) -> Path:
    """The item folder of a set (exists only once something was fetched)."""
    return (root or cache_root()) / get_source(name).name


@dataclass(frozen=True)
class CacheStatus:
    name: str
    items: int
    bytes: int
    complete: bool
    path: Path


def cache_status(name: str, root: Path | None = None) -> CacheStatus:
    """What is cached for one set: item count, bytes on disk, whether a full fetch finished."""
    folder = set_dir(name, root)
    suffix = get_source(name).suffix
    files = [p for p in folder.glob(f"*{suffix}") if not p.name.startswith(".")] if folder.is_dir() else []
    return CacheStatus(name, len(files), sum(p.stat().st_size for p in files),
                       (folder / DONE_MARKER).is_file(), folder)


def read_manifest(folder: Path) -> dict:
    """The manifest of a set folder, or an empty one when there is none yet."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return {"items": {}, "skipped": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: unreadable manifest ({e}); delete it to rebuild from the images.") from e
    data.setdefault("items", {})
    data.setdefault("skipped", {})
    return data
