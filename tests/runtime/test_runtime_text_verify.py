"""Text verification: the PP-OCR reader on real rendered text, the word comparison, the matcher's use of
it, and the gallery's texts (pocketvec.runtime.text_reader, text_verify, printed_text)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from pocketvec.errors import GalleryError
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.item_zoom import PhotoRegion
from pocketvec.runtime.printed_text import PhotoTexts, read_text, text_available, text_box, text_reader
from pocketvec.runtime.text_reader import TextReader, TextReaderError, find_models
from pocketvec.runtime.text_verify import TextVerify, evidence, found, holds, normalise, telling, verify_rows, words

needs_ocr = pytest.mark.skipif(not text_available(), reason="the pocketvec[text] extra is not installed")


def label(vintage: str, volume: str = "75cl", size: tuple[int, int] = (360, 480)) -> np.ndarray:
    """A plain wine label: a name, a line of small print, the vintage and the volume."""
    image = Image.new("RGB", size, (238, 230, 205))
    draw = ImageDraw.Draw(image)
    draw.rectangle([10, 10, size[0] - 10, size[1] - 10], outline=(110, 30, 30), width=5)
    for y, text, points in ((90, "CHATEAU MONTVERT", 30), (170, "Grand Vin de Bordeaux", 22),
                            (300, vintage, 34), (400, volume, 24)):
        draw.text((size[0] // 2, y), text, font=ImageFont.load_default(size=points), fill=(40, 30, 30), anchor="mm")
    return np.asarray(image)


def photo(rgb: np.ndarray) -> np.ndarray:
    """The label smaller on a dark background, a little blurred, as a phone would see it."""
    frame = Image.new("RGB", (480, 640), (50, 60, 70))
    item = Image.fromarray(rgb).resize((300, 400), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(0.8))
    frame.paste(item, (90, 120))
    return np.asarray(frame)


def test_normalise_and_words() -> None:
    assert normalise("Château  MONTVERT, 13,5% vol") == "chateau montvert 13.5 vol"
    assert words("37,5cl Grande Réserve a") == {"37.5cl", "grande", "reserve"}  # one-letter words say nothing


def test_found_grades_approximate_substrings() -> None:
    photo_text = normalise("GrandVin deBordeaux 2015 75cl Embotellado por la bodega")
    assert found("2015", photo_text) == 1.0
    assert found("bordeaux", photo_text) == 1.0  # OCR dropped the space: still found
    assert found("bordeaox", photo_text) == pytest.approx(0.5)  # one letter of 8 wrong: half found
    assert found("bordelais", photo_text) == 0.0  # a third of it wrong
    assert found("2016", photo_text) == 0.0  # a number is as printed: one digit off is another number
    assert found("2o15", photo_text) == 0.5  # ... or one look-alike shape off
    assert found("en", photo_text) == 0.0 and found("por", photo_text) == 1.0  # short words only whole
    assert found("syrah", photo_text) == 0.0 and found("2015", "") == 0.0


def test_the_same_print_read_twice_is_not_a_difference() -> None:
    original, medal = words("Bodegas Casrac D.O. Viino 2018"), words("Medalla Bronce Bodegas Casrac D.O. Vilino 2018")
    assert holds("vilino", original) and holds("viino", medal)  # one OCR misread of one word
    assert not holds("2019", original)  # a number: exactly
    assert telling([original, medal])[0] == ["bronce", "medalla"]


def test_evidence_counts_only_the_words_that_differ() -> None:
    editions = [words("Montvert 2015 75cl"), words("Montvert 2016 75cl"), words("Montvert 2015 150cl")]
    scored = evidence("MONTVERT 2016 75cl", editions)
    assert scored.argmax() == 1 and scored[1] - np.sort(scored)[-2] >= 1.0
    # nothing telling legible: no candidate gains on another
    assert np.ptp(evidence("MONTVERT", editions)) == 0.0
    # candidates with the same words (flags with no text at all): no evidence either way
    np.testing.assert_array_equal(evidence("MONTVERT 2016", [frozenset()] * 3), np.zeros(3))


def test_verify_rows_reads_only_when_the_candidates_disagree() -> None:
    label_words = [words("Montvert 2015"), words("Montvert 2016"), words("Other house 1999")]
    row_labels = np.array([0, 1, 2])
    asked: list[int] = []

    def read(q: int) -> str:
        asked.append(q)
        return "montvert 2016"

    # photo 0: labels 0 and 1 near each other (the visual answer, 0, is wrong); photo 1: 2 far ahead of the rest
    visual = np.array([[0.80, 0.78, 0.10], [0.20, 0.22, 0.90]], np.float32)
    verified, read_mask = verify_rows(visual, row_labels, label_words, read, TextVerify(weight=0.1, window=0.15))
    assert asked == [0] and read_mask.tolist() == [True, False]
    assert verified[0].argmax() == 1 and verified[0, 1] == pytest.approx(0.78)  # the text's label keeps its score
    # "2016" found: one word for label 1, the same word against label 0: two words behind
    assert verified[0, 0] == pytest.approx(0.80 - 0.1 * 2)
    np.testing.assert_array_equal(verified[1], visual[1])
    # the same words on every candidate: nothing to read
    same = [words("Montvert 2015")] * 3
    asked.clear()
    np.testing.assert_array_equal(verify_rows(visual, row_labels, same, read)[0], visual)
    assert not asked


def test_unknown_models_are_named() -> None:
    with pytest.raises(TextReaderError, match="not a folder and not one of"):
        find_models("no-such-ocr")


@needs_ocr
def test_reader_reads_rendered_print() -> None:
    reader = TextReader()
    lines = [line.text for line in reader.read(photo(label("2015", "37,5cl")))]
    text = normalise(" ".join(lines))
    assert "2015" in text and "montvert" in text.replace(" ", "")
    assert found("37.5cl", text) == 1.0
    for line in reader.read(label("2016")):
        assert 0.0 < line.confidence <= 1.0 and len(line.box) == 4


@needs_ocr
def test_photo_texts_tell_vintages_apart(tmp_path: Path) -> None:
    vintages = ["2014", "2015", "2016", "2017"]
    photos = []
    for vintage in vintages:
        Image.fromarray(photo(label(vintage))).save(tmp_path / f"{vintage}.jpg", quality=90)
        photos.append(tmp_path / f"{vintage}.jpg")
    texts = PhotoTexts(photos)
    label_words = [words(f"CHATEAU MONTVERT Grand Vin de Bordeaux {v} 75cl") for v in vintages]
    # a visual score that cannot tell the editions apart (all equal): the text must
    visual = np.full((len(vintages), len(vintages)), 0.9, np.float32)
    verified, read = verify_rows(visual, np.arange(len(vintages)), label_words, texts.read)
    assert read.all() and verified.argmax(axis=1).tolist() == list(range(len(vintages)))


def test_text_box_scales_grows_and_clips() -> None:
    region = PhotoRegion((100, 200, 300, 600), 1000, 2000)  # found in the photo decoded whole
    assert text_box(region, 1000, 2000, margin_percent=0) == (100, 200, 300, 600)
    assert text_box(region, 1000, 2000) == (90, 180, 310, 620)  # 5 % of 200 rows, of 400 columns, on each side
    assert text_box(region, 333, 666, margin_percent=0) == (33, 66, 100, 200)  # shrunk for reading: outwards
    assert text_box(PhotoRegion((0, 3, 40, 100), 40, 100), 40, 100) == (0, 0, 40, 100)  # within the photo


def test_photo_texts_take_one_region_per_photo() -> None:
    with pytest.raises(ValueError, match="1 regions for 2 photos"):
        PhotoTexts(["a.jpg", "b.jpg"], regions=[None])


@needs_ocr
def test_a_photo_is_read_in_its_items_region(tmp_path: Path) -> None:
    """A 2015 label beside a sign printed 2016 (a shop's price card, a newspaper): read whole, the photo shows
    both years and the text cannot choose; read in the item's region, only the label's."""
    frame = Image.new("RGB", (900, 600), (50, 60, 70))
    item = Image.fromarray(label("2015")).resize((300, 400), Image.Resampling.BILINEAR)
    frame.paste(item, (60, 100))
    draw = ImageDraw.Draw(frame)
    draw.rectangle([480, 200, 860, 400], fill=(245, 245, 240))
    draw.text((670, 300), "OFFER 2016", font=ImageFont.load_default(size=48), fill=(20, 20, 20), anchor="mm")
    frame.save(tmp_path / "shelf.png")
    region = PhotoRegion((100, 60, 500, 360), 600, 900)  # where the label lies
    reader = text_reader()
    assert "2016" in read_text(reader, tmp_path / "shelf.png") and "2015" in read_text(reader, tmp_path / "shelf.png")
    assert "2016" not in read_text(reader, tmp_path / "shelf.png", region)
    label_words = [words(f"CHATEAU MONTVERT Grand Vin de Bordeaux {v} 75cl") for v in ("2015", "2016")]
    visual = np.array([[0.89, 0.9]], np.float32)  # the image alone leans to the wrong edition
    for regions, answer in ((None, 1), ([region], 0)):
        texts = PhotoTexts([tmp_path / "shelf.png"], regions=regions)
        verified, read = verify_rows(visual, np.arange(2), label_words, texts.read)
        assert read.all() and int(verified.argmax()) == answer, (regions, texts.texts)


def test_gallery_keeps_texts(tmp_path: Path) -> None:
    rows = np.eye(3, 8, dtype=np.float32)
    gallery = Gallery("space", 8)
    gallery.add(rows[:2], ["a", "b"], ["s1", "s2"], texts=["CHATEAU 2015", "CHATEAU 2016"], text_reader="ppocrv5")
    gallery.save(tmp_path / "g.pvg")
    again = Gallery.load(tmp_path / "g.pvg")
    assert again.texts == ["CHATEAU 2015", "CHATEAU 2016"] and again.text_reader == "ppocrv5"
    with pytest.raises(GalleryError, match="keeps each item's printed text"):
        again.add(rows[2:], ["c"], ["s3"])  # a row without its text would never be verified
    again.remove("a")
    assert again.texts == ["CHATEAU 2016"]
    plain = Gallery("space", 8)
    plain.add(rows[:1], ["a"], ["s1"])
    with pytest.raises(GalleryError, match="keeps no printed text"):
        plain.add(rows[1:2], ["b"], ["s2"], texts=["x"], text_reader="ppocrv5")


@pytest.fixture
def vintages(tmp_path: Path) -> tuple[Path, list[Path]]:
    """Four editions of one label that differ only in the vintage (items/), and a photo of each."""
    items, photos = tmp_path / "items", tmp_path / "photos"
    items.mkdir()
    photos.mkdir()
    paths = []
    for vintage in ("2014", "2015", "2016", "2017"):
        rgb = label(vintage)
        Image.fromarray(rgb).save(items / f"montvert-{vintage}.png")
        Image.fromarray(photo(rgb)).save(photos / f"montvert-{vintage}.jpg", quality=90)
        paths.append(photos / f"montvert-{vintage}.jpg")
    return items, paths


@needs_ocr
def test_recognizer_reads_the_difference(onnx_model: Path, vintages: tuple[Path, list[Path]], tmp_path: Path) -> None:
    import pocketvec
    from pocketvec.runtime.gallery.views import NO_VIEWS

    items, photos = vintages
    assert pocketvec.Recognizer(onnx_model, tmp_path / "none.pvg", text=False).text_models is None
    # the test model is untrained: its scores spread far wider than a trained model's between editions
    wide = TextVerify(weight=1.0, window=2.0)
    rec = pocketvec.Recognizer(onnx_model, tmp_path / "labels.pvg", views=NO_VIEWS, text_verify=wide)  # read: installed
    rec.enroll(items)
    assert rec.gallery.reads_text and rec.text_models == "ppocrv5"
    assert all(label.split("-")[1] in text for label, text in zip(rec.gallery.labels, rec.gallery.texts, strict=True))
    answers = [r.top[0].label for r in rec.match_many(photos)]
    assert answers == [p.stem for p in photos]
    rec.save()
    # reopened, the gallery's texts turn it on; text=False matches by the image alone (the same gallery)
    reopened = pocketvec.Recognizer(onnx_model, tmp_path / "labels.pvg", text_verify=wide)
    assert reopened.text_models == "ppocrv5" and [r.top[0].label for r in reopened.match_many(photos)] == answers
    blind = pocketvec.Recognizer(onnx_model, tmp_path / "labels.pvg", text=False)
    assert blind.text_models is None and blind.gallery.reads_text
    assert [r.top[0].label for r in blind.match_many(photos)] != answers  # the untrained model alone is wrong


@needs_ocr
def test_cli_builds_and_matches_with_text(onnx_model: Path, vintages: tuple[Path, list[Path]], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import sys

    from pocketvec.cli import main

    def run(*args: object) -> str:
        monkeypatch.setattr(sys, "argv", ["pocketvec", *map(str, args)])
        monkeypatch.setenv("COLUMNS", "200")
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code in (0, None), capsys.readouterr()
        return capsys.readouterr().out

    items, photos = vintages
    gallery = tmp_path / "labels.pvg"
    assert "printed text read (ppocrv5)" in run("gallery", "build", onnx_model, "--images", items, "--out", gallery,
                                                "--views", "0")  # read by default where the models are installed
    info = json.loads(run("gallery", "info", gallery, "--json"))
    assert info["text_reader"] == "ppocrv5" and info["rows_with_text"] == 4
    results = json.loads(run("match", onnx_model, gallery, *photos, "--json"))["results"]
    assert len(results) == 4  # the answers: test_recognizer_reads_the_difference (the same matcher)
    plain = tmp_path / "plain.pvg"
    run("gallery", "build", onnx_model, "--images", items, "--out", plain, "--views", "0", "--no-text")
    assert Gallery.load(plain).texts is None
