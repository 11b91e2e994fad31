"""Cached benchmark sets made of our own renderings: one folder per config, built aside and renamed into place."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

from pocketvec.atomic import replace_folder, staging_folder
from pocketvec.bounded_json import read_json
from pocketvec.errors import DatasetError


def manifest_config(folder: Path) -> dict | None:
    """The `config` of a set folder's manifest.json; None when there is no readable one."""
    try:
        return read_json(folder / "manifest.json", "set manifest").get("config")
    except DatasetError:
        return None


def build_set_folder(folder: Path, wanted: dict, make: Callable[[Path], dict]) -> Path:
    """`folder` as it is when its manifest's config is `wanted` (as JSON reads it back: lists, not tuples);
    else `make(building)` fills a fresh folder beside it and returns the manifest less its config, and the
    folder is renamed into place. A set in use is never touched half-way, and two builds at once both end with
    a complete copy."""
    if manifest_config(folder) == wanted:
        return folder
    with staging_folder(folder) as building:
        building.mkdir()
        building.chmod(0o755)
        manifest = {"config": wanted, **make(building)}
        (building / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if manifest_config(folder) != wanted:  # another build may have finished first: keep its copy
            with contextlib.suppress(OSError):  # lost a race to a build of the same config: its copy serves
                replace_folder(building, folder)
    return folder
