"""`pocketvec data preview` through the real entry point, on a copy of two embedded items."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from pocketvec.data.assets import backgrounds_dir, demo_items_dir
from pocketvec.data.augment import AugmentConfig, PhoneAugment
from pocketvec.data.items import load_items
from pocketvec.data.preview import contact_sheet


def _preview(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pocketvec", "data", "preview", *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", "TERM": "dumb"})


def test_preview_writes_the_sheet_the_library_makes(tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    for name in ("flag_chad.png", "doc_microtype_p010.png"):
        shutil.copy(demo_items_dir() / name, items / name)
    out = tmp_path / "out" / "sheet.png"
    result = _preview(str(items), "--out", str(out), "--seed", "5", "--n", "3", "--size", "64",
                      "--backgrounds", str(backgrounds_dir()))
    assert result.returncode == 0, result.stderr
    sheet = np.asarray(Image.open(out))
    assert sheet.shape[1] == 3 * (64 + 4) + 4 and sheet.std() > 10
    assert not list(out.parent.glob(".*.tmp"))  # the atomic write leaves no temp file
    # the same seed in another process gives the same pixels
    augment = PhoneAugment(AugmentConfig(), 64, backgrounds=backgrounds_dir())
    expected = np.asarray(contact_sheet(load_items(items), augment, n=3, seed=5))
    np.testing.assert_array_equal(sheet, expected)


def test_preview_of_a_missing_folder_is_one_clear_line(tmp_path):
    result = _preview(str(tmp_path / "nothing"), "--out", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert "nothing: no such file or folder" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_preview_leaves_out_an_unreadable_item_and_names_it(tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    for name in ("flag_chad.png", "doc_microtype_p010.png"):
        shutil.copy(demo_items_dir() / name, items / name)
    data = (demo_items_dir() / "flag_mali.png").read_bytes()
    (items / "flag_mali.png").write_bytes(data[: len(data) // 3])  # truncated mid-file
    out = tmp_path / "sheet.png"
    result = _preview(str(items), "--out", str(out), "--n", "6", "--size", "64")
    assert result.returncode == 1, result.stderr
    assert "skipped" in result.stdout and "flag_mali.png" in result.stdout
    assert Image.open(out).size[0] > 0  # the two readable items still made the sheet
