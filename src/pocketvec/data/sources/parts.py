"""Items that are parts of one file: the cards of a deck drawn in one SVG, the icons of an Iconify JSON set,
the pictures inside a zip archive (a game's .pk3 texture pack).

A deck SVG (plain or gzip'd .svgz) names each card's group with an id ("queen_heart"); the part
pattern of the set says which ids are items. An Iconify set is a JSON object whose `icons` map names
to SVG bodies; its `width`/`height` (per icon or for the set) give the view box.
"""

from __future__ import annotations

import gzip
import re
import zipfile
from functools import lru_cache
from pathlib import Path

from pocketvec.bounded_json import read_json
from pocketvec.errors import DatasetError

_ID = re.compile(rb'\bid="([^"]+)"')


def svg_text(path: Path) -> bytes:
    """The bytes of an SVG file, gunzipped when it is an .svgz."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DatasetError(f"{path}: not a readable gzip'd SVG ({e})") from e
    return data


def svg_part_ids(path: Path, pattern: str) -> list[str]:
    """The element ids in the SVG that fully match `pattern`, in document order, each once."""
    wanted = re.compile(pattern)
    seen: dict[str, None] = {}
    for match in _ID.finditer(svg_text(path)):
        name = match.group(1).decode("utf-8", "replace")
        if wanted.fullmatch(name):
            seen.setdefault(name)
    return list(seen)


@lru_cache(maxsize=4)
def _iconify_set(path: Path) -> dict:
    data = read_json(path, "Iconify JSON file", DatasetError)
    if not isinstance(data, dict) or not isinstance(data.get("icons"), dict):
        raise DatasetError(f"{path}: an Iconify JSON file needs an 'icons' object")
    return data


def iconify_names(path: Path) -> list[str]:
    """Every icon of the set (aliases, which repeat an icon, left out), sorted."""
    return sorted(_iconify_set(path)["icons"])


def iconify_svg(path: Path, name: str) -> str:
    """One icon of the set as a standalone SVG document."""
    data = _iconify_set(path)
    icon = data["icons"].get(name)
    if not isinstance(icon, dict) or not isinstance(icon.get("body"), str):
        raise DatasetError(f"{path}: no icon {name!r} with an SVG body")
    left, top = icon.get("left", data.get("left", 0)), icon.get("top", data.get("top", 0))
    width, height = icon.get("width", data.get("width", 16)), icon.get("height", data.get("height", 16))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{left} {top} {width} {height}" width="{width}" height="{height}">{icon["body"]}</svg>')


def zip_entries(path: Path, suffixes: tuple[str, ...], min_bytes: int = 0) -> list[str]:
    """The members of a zip archive with one of `suffixes` and at least `min_bytes`, sorted."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sorted(m.filename for m in archive.infolist()
                          if m.filename.lower().endswith(suffixes) and m.file_size >= min_bytes)
    except (zipfile.BadZipFile, OSError) as e:
        raise DatasetError(f"{path}: not a readable zip archive ({e})") from e


def read_zip_entry(path: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise DatasetError(f"{path}: cannot read {member!r} ({e})") from e
