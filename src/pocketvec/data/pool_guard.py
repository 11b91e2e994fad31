"""What may enter a training pool: training sets only, never what the benchmark tiers are made of.

The benchmark tiers (pages of texlive-humanities-doc, flag-icons, the GNOME backgrounds, the
look-alike tier built from them, and the fonts of the label-editions tier) must stay unseen by
training. Three checks keep them out:

- a set is in a pool only if its catalogue role is "training" (benchmark and background sets are not);
- no training set may draw on a package a benchmark set uses (`check_catalog`, run at every pool build
  and in the tests), so a new source cannot smuggle the same files in under another name;
- items whose bytes equal an item of a fetched benchmark set are dropped (`benchmark_hashes`).
"""

from __future__ import annotations

from pathlib import Path

from pocketvec.data.sources import LABEL_FONTS, SOURCES, read_manifest
from pocketvec.data.sources.spec import SourceSpec
from pocketvec.errors import DatasetError

EXCLUDED_ROLES = ("benchmark", "backgrounds")


def _package_name(ref_name: str) -> str:
    """A package name without its version pin (`flag-icons@7.5.0` -> `flag-icons`)."""
    return ref_name.rpartition("@")[0] if "@" in ref_name[1:] else ref_name


def protected_packages(sources: dict[str, SourceSpec] = SOURCES) -> dict[str, str]:
    """Package name -> the benchmark set (or tier) that uses it."""
    protected = {ref.name: "label-editions (its fonts)" for ref in LABEL_FONTS}
    return protected | {_package_name(ref.name): spec.name for spec in sources.values() if spec.role == "benchmark"
                        for ref in spec.packages}


def check_catalog(sources: dict[str, SourceSpec] = SOURCES) -> None:
    """Refuse a catalogue in which a training set uses a package of a benchmark set."""
    protected = protected_packages(sources)
    for spec in sources.values():
        if spec.role != "training":
            continue
        for ref in spec.packages:
            if _package_name(ref.name) in protected:
                raise DatasetError(f"The training set {spec.name} uses {ref.name}, a package of the benchmark set "
                                   f"{protected[_package_name(ref.name)]}: benchmark data never enters training.")


def check_pool_set(name: str, sources: dict[str, SourceSpec] = SOURCES) -> SourceSpec:
    """The spec of a set that may be in a training pool; a clear error for any other name."""
    check_catalog(sources)
    spec = sources.get(name)
    if spec is None:
        raise DatasetError(f"{name!r} is not a training set of `pocketvec data fetch` (the look-alike tier and "
                           f"other benchmark data never enter a pool). Training sets: "
                           f"{', '.join(n for n, s in sources.items() if s.role == 'training')}.")
    if spec.role != "training":
        raise DatasetError(f"{name} is a {spec.role} set and never part of the training pool.")
    return spec


def benchmark_hashes(root: Path, sources: dict[str, SourceSpec] = SOURCES) -> set[str]:
    """sha256 of every item of the benchmark sets fetched under `root` (none when none is fetched)."""
    hashes: set[str] = set()
    for spec in sources.values():
        if spec.role in EXCLUDED_ROLES:
            folder = root / spec.name
            if folder.is_dir():
                hashes.update(entry["sha256"] for entry in read_manifest(folder)["items"].values()
                              if "sha256" in entry)
    return hashes
