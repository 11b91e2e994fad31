"""The bench's kept photo texts (pocketvec.bench.texts): a photo read in its item's region is kept per region, so
that another model's region reads again, a photo rebuilt under the same name reads again, and the read photos come
back with their regions for the timing."""

from __future__ import annotations

from pathlib import Path

from pocketvec.bench.texts import TierTexts
from pocketvec.runtime.item_zoom import PhotoRegion


def test_photo_texts_are_kept_per_region(tmp_path: Path) -> None:
    photos = [tmp_path / "queries" / f"wine--q{i}.jpg" for i in range(3)]
    photos[0].parent.mkdir()
    for i, photo in enumerate(photos):
        photo.write_bytes(b"photo %d" % i)  # the bytes key the reading (never decoded here)
    region = PhotoRegion((10, 20, 300, 400), 360, 480)
    texts = TierTexts(tmp_path, "ppocrv5")
    read = texts.photos(photos, [region, None, None])
    read.texts.update({0: "CHATEAU 2015", 1: "CHATEAU 2016"})  # what the matcher read (photo 2: not asked)
    texts.keep(read)

    again = TierTexts(tmp_path, "ppocrv5")  # a later run: the file
    assert again.photos(photos, [region, None, None]).texts == {0: "CHATEAU 2015", 1: "CHATEAU 2016"}
    other = PhotoRegion((12, 20, 300, 400), 360, 480)  # another model's zoom: read again
    assert again.photos(photos, [other, region, None]).texts == {}
    assert again.photos(photos).texts == {1: "CHATEAU 2016"}  # not zoomed: the whole photo's reading
    assert sorted(again.read_photos(), key=str) == sorted([(photos[0], region), (photos[1], None)], key=str)

    photos[1].write_bytes(b"rebuilt")  # another framing, the same name: its old reading is not used
    assert TierTexts(tmp_path, "ppocrv5").photos(photos).texts == {}
    assert TierTexts(tmp_path, "ppocrv5").read_photos() == [(photos[0], region)]
