"""pocketvec.Recognizer: the Python API on a real ONNX model and real images, torch-free."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pocketvec
from pocketvec.errors import ConfigError, GalleryError, ImageLoadError
from pocketvec.runtime.enroll import build_gallery
from pocketvec.runtime.gallery.views import NO_VIEWS
from pocketvec.runtime.matcher import DEFAULT_RULE, Matcher


def test_enroll_match_save_reopen(onnx_model: Path, items_dir: Path, item_paths: list[Path], tmp_path: Path,
                                  capsys) -> None:
    path = tmp_path / "items.pvg"
    # a gallery file that does not exist yet; rows of the clean images alone, so an item matches itself at 1.0
    rec = pocketvec.Recognizer(onnx_model, path, views=NO_VIEWS, text=False)
    report = rec.enroll(items_dir)
    assert report.added == 10 and not report.skipped and not report.failures
    extra = item_paths[20]
    assert rec.enroll(extra, label="extra_item").added == 1
    assert rec.enroll(extra, label="extra_item").skipped  # the same bytes again: reported, not added
    assert rec.save() == path

    again = pocketvec.Recognizer(onnx_model, path)
    assert again.labels == rec.labels and len(again.labels) == 11
    result = again.match(items_dir / item_paths[3].name)
    assert isinstance(result, pocketvec.Recognition)
    assert result.top[0].label == item_paths[3].stem and result.score == pytest.approx(1.0, abs=1e-3)
    assert result.top[0].score >= result.top[1].score and result.margin > 0
    # the same decision as the matcher with the default rule (never calibrated)
    assert not again.calibrated and again.rule == DEFAULT_RULE and again.rule_source == "default"
    gallery, _ = build_gallery(again.engine, items_dir, views=NO_VIEWS)
    expected = Matcher(gallery, DEFAULT_RULE).match(again.embed([items_dir / item_paths[3].name]))[0]
    assert (result.answer, result.accepted) == (expected.answer, expected.accepted)
    assert capsys.readouterr() == ("", "")  # a library call prints nothing


def test_arrays_many_and_calibrate(onnx_model: Path, items_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    rec = pocketvec.Recognizer(onnx_model, text=False)
    rec.enroll(items_dir)
    images = sorted(items_dir.iterdir())[:3]
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in images]
    by_array, by_path = rec.match_many(arrays), rec.match_many(images)
    assert [r.top for r in by_array] == [r.top for r in by_path]  # same pixels, same answer

    photos = tmp_path / "photos"
    for p in images:
        (photos / p.stem).mkdir(parents=True)
        shutil.copy(p, photos / p.stem / p.name)
    result = rec.calibrate(photos, target_precision=0.9)
    assert rec.calibrated and rec.rule == result.rule and rec.rule_source == "gallery"
    assert rec.match(images[0]).accepted == bool(result.chosen.correct)  # the rule now applies
    with pytest.raises(ConfigError, match="needs a path"):
        rec.save()
    assert rec.save(tmp_path / "x.pvg").is_file()


def test_clear_errors(onnx_model: Path, other_onnx_model: Path, items_dir: Path, tmp_path: Path) -> None:
    rec = pocketvec.Recognizer(onnx_model, text=False)
    with pytest.raises(GalleryError, match="empty"):
        rec.match(next(items_dir.iterdir()))
    with pytest.raises(ConfigError, match="needs a label"):
        rec.enroll(next(items_dir.iterdir()))
    rec.enroll(items_dir)
    with pytest.raises(ImageLoadError, match=r"missing\.jpg"):
        rec.match(tmp_path / "missing.jpg")
    rec.save(tmp_path / "a.pvg")
    with pytest.raises(GalleryError, match="another model"):
        pocketvec.Recognizer(other_onnx_model, tmp_path / "a.pvg")


def test_import_pocketvec_and_recognizer_stay_torch_free() -> None:
    code = ("import sys, pocketvec\nlight = 'numpy' not in sys.modules\npocketvec.Recognizer\n"
            "print(light, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]
