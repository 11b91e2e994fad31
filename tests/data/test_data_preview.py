"""`pocketvec data preview` through the real entry point, on a copy of two embedded items."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from pocketvec.data.assets import backgrounds_dir, demo_items_dir


def _preview(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pocketvec", "data", "preview", *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", "TERM": "dumb"})


def test_preview_writes_a_reproducible_sheet(tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    for name in ("flag_chad.png", "doc_microtype_p010.png"):
        shutil.copy(demo_items_dir() / name, items / name)
    common = ["--n", "3", "--size", "64", "--backgrounds", str(backgrounds_dir())]
    first = _preview(str(items), "--out", str(tmp_path / "out" / "a.png"), "--seed", "5", *common)
    assert first.returncode == 0, first.stderr
    sheet = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert sheet.shape[1] == 3 * (64 + 4) + 4 and sheet.std() > 10
    again = _preview(str(items), "--out", str(tmp_path / "b.png"), "--seed", "5", *common)
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(sheet, np.asarray(Image.open(tmp_path / "b.png")))
    assert not list(tmp_path.glob("out/.*.tmp"))  # atomic write leaves no temp file


def test_preview_of_a_missing_folder_is_one_clear_line(tmp_path):
    result = _preview(str(tmp_path / "nothing"), "--out", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert "nothing: no such file or folder" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()
