"""The printed text of a tier's images, for text verification: each item read once as `gallery build` reads
it, each photo only when the matcher asks (`PhotoTexts`: in the item's region zoom found, else whole), both kept
beside the tier so that every model and form of every later run reuses them (a photo's reading is kept per
region: models zoom to different ones). The reading depends on the OCR models, the reading sizes, the region's
margin and the reader's code alone: the file is named by them, so a change reads again. Each reading is keyed by
its image's path and bytes: a photo rebuilt under the same name (other framing, other seed) is read again."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from pocketvec.atomic import write_bytes_atomic
from pocketvec.bench.code_id import code_id
from pocketvec.bounded_json import read_json
from pocketvec.runtime.images import content_hash
from pocketvec.runtime.item_zoom import PhotoRegion
from pocketvec.runtime.printed_text import (
    ITEM_DETECT_SIDE,
    PHOTO_DETECT_SIDE,
    TEXT_MARGIN_PERCENT,
    PhotoTexts,
    read_item_texts,
)

REGION = re.compile(r"^(.*)@(\d+),(\d+),(\d+),(\d+)/(\d+)x(\d+)$")  # a photo read in a region: its key's end
DIGEST = 16  # hex digits of the image's sha256 in its key


def texts_file(models: str) -> str:
    """The name of a tier's texts file read with `models` as the runtime reads today."""
    import pocketvec.runtime.text_reader

    reading = f"{ITEM_DETECT_SIDE}-{PHOTO_DETECT_SIDE}-m{TEXT_MARGIN_PERCENT}-{code_id(pocketvec.runtime.text_reader)}"
    return f"texts-{Path(models).name}-{reading}.json"


class TierTexts:
    def __init__(self, folder: Path, models: str) -> None:
        self.folder, self.models = folder, models
        self.file = folder / texts_file(models)
        self.known: dict[str, str] = read_json(self.file, "text cache") if self.file.is_file() else {}
        self._digests: dict[Path, str] = {}  # each image's bytes hashed once per run (`photos` and `keep` both key)

    def _digest(self, path: Path) -> str:
        if path not in self._digests:
            self._digests[path] = content_hash(path)[:DIGEST]
        return self._digests[path]

    def _key(self, kind: str, path: Path, region: PhotoRegion | None = None) -> str:
        key = f"{kind}:{path.relative_to(self.folder).as_posix()}#{self._digest(path)}"
        if region is None:
            return key
        (top, left, bottom, right), height, width = region
        return f"{key}@{top},{left},{bottom},{right}/{height}x{width}"

    def items(self, paths: list[Path]) -> list[str]:
        """Each clean item image's text, read now when not known yet."""
        missing = [p for p in paths if self._key("item", p) not in self.known]
        for path, text in zip(missing, read_item_texts(missing, self.models), strict=True):
            self.known[self._key("item", path)] = text
        if missing:
            self.save()
        return [self.known[self._key("item", p)] for p in paths]

    def photos(self, paths: list[Path], regions: Sequence[PhotoRegion | None] | None = None) -> PhotoTexts:
        """The photos for the matcher to read on demand (each in its item's region, where `regions` gives one);
        the ones known already are not read again."""
        texts = PhotoTexts(list(paths), self.models, regions=regions)
        keys = [self._key("photo", p, texts.region(i)) for i, p in enumerate(paths)]
        texts.texts.update({i: self.known[key] for i, key in enumerate(keys) if key in self.known})
        return texts

    def read_photos(self) -> list[tuple[Path, PhotoRegion | None]]:
        """The photos read so far, each with the region read (for the reading time, measured apart)."""
        out = []
        for key in sorted(self.known):
            if key.startswith("photo:"):
                name, region = key.split(":", 1)[1], None
                if (found := REGION.match(name)) is not None:
                    name, (top, left, bottom, right, height, width) = found[1], map(int, found.groups()[1:])
                    region = PhotoRegion((top, left, bottom, right), height, width)
                name, digest = name.rsplit("#", 1)
                path = self.folder / name
                if path.is_file() and content_hash(path)[:DIGEST] == digest:  # the photo read, not a rebuilt one
                    out.append((path, region))
        return out

    def keep(self, photos: PhotoTexts) -> None:
        """Remember what `photos` read (the file is written again only when it read anything new)."""
        new = {self._key("photo", Path(photos.photos[i]), photos.region(i)): text for i, text in photos.texts.items()}
        if new.items() - self.known.items():
            self.known.update(new)
            self.save()

    def save(self) -> None:
        write_bytes_atomic(self.file, json.dumps(self.known, ensure_ascii=False, sort_keys=True).encode())

