"""Opening and matching a gallery maps its rows instead of copying them: the peak resident memory of a process
that opens a ~200 MB gallery (int8 rows and Lite0-sized local maps) and matches a photo against it, re-rank
included, grows by well under the file's size (reading it whole and copying it took twice the file and more)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery.rows import Rows

SHAPE = (196, 112)  # EfficientNet-Lite0's 14 x 14 x 112 at 224 px: 44 KB a row in float16
ROWS = 4600  # ~203 MB
SRC = Path(__file__).resolve().parents[2] / "src"

MEASURE = """
import sys
import numpy as np
import onnxruntime  # noqa: F401  (the int8 scan's runtime: loaded before the baseline, as a model would be)
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.matcher import Matcher

def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

baseline = status("VmRSS:")
gallery = Gallery.load(sys.argv[1])
rng = np.random.default_rng(1)
query = gallery.embeddings()[7:8] + 0.05 * rng.standard_normal((1, gallery.dim)).astype(np.float32)
query /= np.linalg.norm(query)
maps = np.asarray(gallery.locals[[7]], np.float32)
match = Matcher(gallery, local_rerank=LocalRerank(*gallery.local_shape)).match(query, 3, maps)[0]
print(baseline, status("VmHWM:"), match.top[0][0])
"""


def synthetic_gallery(path: Path) -> Path:
    """ROWS int8 unit rows with float16 local maps (a few distinct maps repeated: the file is written streamed,
    never held whole)."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((ROWS, 256)).astype(np.float32)
    block = rng.standard_normal((50, *SHAPE)).astype(np.float32)
    block = (block / np.linalg.norm(block, axis=-1, keepdims=True)).astype(np.float16)
    gallery = Gallery("space", 256, "int8", [f"item{i}" for i in range(ROWS)], [f"{i:064x}" for i in range(ROWS)],
                      local_shape=SHAPE, locals=Rows([block] * (ROWS // len(block)), SHAPE, np.float16))
    from pocketvec.runtime.gallery import quantize

    gallery.vectors = quantize(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), "int8")
    return gallery.save(path)


def test_opening_and_matching_a_gallery_costs_far_less_than_its_size(tmp_path: Path) -> None:
    path = synthetic_gallery(tmp_path / "big.pvg")
    size = path.stat().st_size
    assert size > 200e6
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    baseline, peak, answer = out.stdout.split()
    assert answer == "item7"
    grown = int(peak) - int(baseline)
    assert grown < 0.5 * size, f"opening and matching grew resident memory by {grown:,} bytes for a {size:,}-byte file"
