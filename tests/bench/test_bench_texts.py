"""The bench's kept photo texts (pocketvec.bench.texts): a photo read in its item's region is kept per region, so
that another model's region reads again, a photo rebuilt under the same name reads again, and the read photos come
back with their regions for the timing; the pixel cache follows rebuilt photos too."""

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


def test_prepared_pixels_follow_a_photo_rebuilt_under_its_name(tmp_path: Path) -> None:
    """The bench's pixel cache is keyed by the photos' bytes, not their names alone."""
    import numpy as np
    from PIL import Image

    from pocketvec.bench.formats import prepared_pixels
    from pocketvec.runtime.preprocess import PreprocessSpec

    photo, spec = tmp_path / "wine--q0.jpg", PreprocessSpec(input_size=32)
    Image.new("RGB", (48, 64), (200, 30, 30)).save(photo)
    red = prepared_pixels([photo], spec, tmp_path / "pixels")
    Image.new("RGB", (64, 48), (30, 30, 200)).save(photo)  # rebuilt: another framing, the same name
    blue = prepared_pixels([photo], spec, tmp_path / "pixels")
    assert red[0, 16, 16, 0] > 150 and blue[0, 16, 16, 2] > 150
    assert np.array_equal(blue, prepared_pixels([photo], spec, tmp_path / "pixels"))  # and cached again
