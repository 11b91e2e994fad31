"""Images bounded by the work their preprocessing will do; every bad file is reported by name and
costs only itself: strips, dangling links, folders named x.jpg, pipes, non-UTF-8 names, broken files."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pocketvec.errors import ImageLoadError
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.image_bounds import MAX_SCALED_PIXELS, check_bounds
from pocketvec.runtime.preprocess import PreprocessSpec

from .test_runtime_cli import cli

NON_UTF8 = os.fsdecode(b"caf\xe9.png")


def strip(path: Path, width: int, height: int) -> Path:
    Image.new("RGB", (width, height), (200, 30, 30)).save(path)
    return path


def test_a_strip_is_refused_before_it_is_scaled(onnx_model: Path, item_paths: list[Path], tmp_path: Path) -> None:
    """A 1 x 3,000 PNG of a few bytes asked GiBs once its short side was scaled to the input size."""
    engine = open_engine(onnx_model)
    strips = [strip(tmp_path / "thin.png", 1, 3000), strip(tmp_path / "thinner.png", 100_000, 1)]
    assert all(p.stat().st_size < 2000 for p in strips)
    start = time.monotonic()
    result = engine.embed_files([item_paths[0], *strips, item_paths[1]])
    assert time.monotonic() - start < 20
    assert result.paths == [item_paths[0], item_paths[1]] and result.embeddings.shape[0] == 2
    assert [(f.path, "aspect ratio" in f.problem) for f in result.failures] == [(p, True) for p in strips]
    assert "3000:1 (1 x 3000)" in str(result.failures[0])


def test_the_bound_is_on_pixels_after_the_scale() -> None:
    big = PreprocessSpec(input_size=1024)
    check_bounds(1024 * 15, 1024, big, "wide.png")  # 15:1 at 1024 px: 15.7 M pixels, inside
    with pytest.raises(ImageLoadError, match=r"wide\.png: image would be scaled to 17,825,792 pixels"):
        check_bounds(1024 * 17, 1024, big, "wide.png")
    check_bounds(1024 * 17, 1024, PreprocessSpec(input_size=1024, crop_mode="scale_fit"), "wide.png")
    assert MAX_SCALED_PIXELS < 1024 * 1024 * 17
    with pytest.raises(ImageLoadError, match="no pixels"):
        check_bounds(0, 5, big, "empty.png")


def odd_folder(items_dir: Path, item_paths: list[Path], tmp_path: Path) -> tuple[Path, list[str]]:
    """The items plus one of each kind of bad entry; returns the folder and the bad names."""
    strip(items_dir / "strip.png", 2, 3000)
    (items_dir / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (items_dir / "folder.jpg").mkdir()
    os.mkfifo(items_dir / "pipe.png")
    (items_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    shutil.copy(item_paths[19], os.path.join(os.fsencode(items_dir), os.fsencode(NON_UTF8)))
    return items_dir, ["strip.png", "dangling.jpg", "folder.jpg", "pipe.png", "broken.png", "caf\\xe9.png"]


def test_gallery_build_lists_every_skipped_file_and_exits_1(monkeypatch, capsys, onnx_model: Path, items_dir: Path,
                                                            item_paths: list[Path], tmp_path: Path) -> None:
    folder, bad = odd_folder(items_dir, item_paths, tmp_path)
    out = tmp_path / "g.pvg"
    code, stdout, err = cli(monkeypatch, capsys, "gallery", "build", "--no-text", onnx_model,
                            "--images", folder, "--out", out)
    assert code == 1, err
    skipped = [line for line in stdout.splitlines() if line.startswith("skipped (unreadable)")]
    assert len(skipped) == len(bad) and all(any(name in line for line in skipped) for name in bad), stdout
    assert "6 image(s) skipped" in stdout and "Traceback" not in stdout + err
    assert Gallery.load(out).count == 10  # the good images all went in


def test_match_names_a_non_utf8_file_and_matches_it(monkeypatch, capsys, onnx_model: Path, items_dir: Path,
                                                    item_paths: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "g.pvg"
    assert cli(monkeypatch, capsys, "gallery", "build", "--no-text", onnx_model,
               "--images", items_dir, "--out", out)[0] == 0
    odd = os.path.join(os.fsencode(tmp_path), os.fsencode(NON_UTF8))
    shutil.copy(items_dir / item_paths[0].name, odd)
    code, stdout, err = cli(monkeypatch, capsys, "match", onnx_model, out, os.fsdecode(odd), "--json")
    assert code == 0, err
    assert json.loads(stdout)["results"][0]["top"][0]["label"] == item_paths[0].stem
    code, stdout, err = cli(monkeypatch, capsys, "match", onnx_model, out, os.fsdecode(odd), tmp_path / "strip.png")
    assert code == 1 and "caf\\xe9.png" in stdout and "strip.png: no such file" in stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: permissions cannot make one unreadable")
def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    from pocketvec.runtime.images import load_image

    path = tmp_path / "locked.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    path.chmod(0)
    with pytest.raises(ImageLoadError, match=r"locked\.png: the file cannot be read"):
        load_image(path)
