"""Opening, matching and appending to a large gallery: time and peak resident memory, this checkout's reader
(format version 4, rows memory-mapped) against another checkout's (`--before-src`, e.g. the main branch before
it) on the same rows written as version 3, which both read.

The gallery is synthetic: N items of int8 256-d rows and EfficientNet-Lite0-sized float16 local maps (196 x 112,
44 KB a row: 50 distinct random unit maps repeated), written streamed. Each measure runs in a fresh process
whose address space is capped at `--cap-gb` (a reader that needs more fails with MemoryError, reported as such).

    python experiments/gallery_mmap.py --items 100000 --before-src /work/main/src --out /tmp/gallery_mmap
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAPE = (196, 112)
SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = r"""
import json, resource, sys, time, warnings
resource.setrlimit(resource.RLIMIT_AS, (int(float(sys.argv[3]) * 2**30),) * 2)
import numpy as np
import onnxruntime  # noqa: F401  (loaded before the baseline, as a model would be)
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.matcher import Matcher

def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

what, path = sys.argv[1], sys.argv[2]
baseline, out = status("VmRSS:"), {}
try:
    start = time.perf_counter()
    if what == "append":
        from pocketvec.runtime.gallery.update import update_gallery
        rng = np.random.default_rng(5)
        row = rng.standard_normal((1, 256)).astype(np.float32); row /= np.linalg.norm(row)
        local = rng.standard_normal((1, 196, 112)).astype(np.float32)
        local /= np.linalg.norm(local, axis=-1, keepdims=True)
        size = __import__("os").path.getsize(path)
        source = f"{time.time_ns():064x}"  # a new image each run (one already enrolled adds nothing)
        update_gallery(path, lambda g: (g.add(row, ["new"], [source], local), True))
        out["append_s"] = time.perf_counter() - start
        out["bytes_before"], out["bytes_after"] = size, __import__("os").path.getsize(path)
    else:
        gallery = Gallery.load(path)
        out["open_s"] = time.perf_counter() - start
        if what == "match":
            query = np.asarray(gallery.vectors[7:8], np.float32) / 127  # row 7 as the photo (an int8 gallery)
            maps = np.asarray(gallery.locals[[7]], np.float32)
            t = time.perf_counter()
            match = Matcher(gallery, local_rerank=LocalRerank(*gallery.local_shape)).match(query, 3, maps)[0]
            out["first_match_s"] = time.perf_counter() - t
            out["answer"] = match.answer
except MemoryError:
    out["error"] = f"MemoryError under the {sys.argv[3]} GiB cap"
out["peak_rss_growth_mb"] = (status("VmHWM:") - baseline) / 1e6
print(json.dumps(out))
"""


def build(path: Path, items: int) -> None:
    """A version-4 gallery of `items` synthetic rows, written streamed by this checkout's writer."""
    sys.path.insert(0, str(SRC))
    from pocketvec.runtime.gallery import Gallery, quantize
    from pocketvec.runtime.gallery.rows import Rows

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((items, 256)).astype(np.float32)
    block = rng.standard_normal((50, *SHAPE)).astype(np.float32)
    block = (block / np.linalg.norm(block, axis=-1, keepdims=True)).astype(np.float16)
    gallery = Gallery("space", 256, "int8", [f"item{i}" for i in range(items)], [f"{i:064x}" for i in range(items)],
                      local_shape=SHAPE, locals=Rows([block] * (items // 50), SHAPE, np.float16))
    gallery.vectors = quantize(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), "int8")
    gallery.save(path)


def as_version_3(v4: Path, v3: Path) -> None:
    """The same rows as a version-3 file (16-byte preamble, one part, checksum at the end), streamed."""
    with open(v4, "rb") as f:
        _, _, header_len, payload_len = struct.unpack("<8sIIQ", f.read(24))
        header = json.loads(f.read(header_len))
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        text += b" " * ((-(16 + len(text))) % 16)
        digest = hashlib.sha256()
        with open(v3, "wb") as out:
            for chunk in (struct.pack("<8sII", b"PVGALLRY", 3, len(text)), text):
                out.write(chunk)
                digest.update(chunk)
            left = payload_len
            while left:
                chunk = f.read(min(left, 16 << 20))
                out.write(chunk)
                digest.update(chunk)
                left -= len(chunk)
            out.write(digest.digest())


def measure(src: Path, what: str, path: Path, cap_gb: float) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, what, str(path), str(cap_gb)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(src)})
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--before-src", type=Path, required=True, help="src/ of the checkout to compare with")
    parser.add_argument("--out", type=Path, required=True, help="folder for the gallery files")
    parser.add_argument("--cap-gb", type=float, default=10.0)
    parser.add_argument("--before-append", action="store_true", help="also time the before reader's append")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    v4, v3 = args.out / f"g{args.items}.v4.pvg", args.out / f"g{args.items}.v3.pvg"
    start = time.perf_counter()
    build(v4, args.items)
    as_version_3(v4, v3)
    print(f"built {args.items} items: {v4.stat().st_size / 1e9:.2f} GB (v4), in {time.perf_counter() - start:.0f} s")
    results = {}
    for name, src, path in (("after v4", SRC, v4), ("after v3", SRC, v3), ("before v3", args.before_src, v3)):
        for what in ("open", "match"):
            results[f"{name} {what}"] = measure(src, what, path, args.cap_gb)
            print(name, what, results[f"{name} {what}"], flush=True)
    results["after v4 append"] = measure(SRC, "append", v4, args.cap_gb)
    print("after v4 append", results["after v4 append"], flush=True)
    if args.before_append:
        results["before v3 append"] = measure(args.before_src, "append", v3, args.cap_gb)
        print("before v3 append", results["before v3 append"], flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
