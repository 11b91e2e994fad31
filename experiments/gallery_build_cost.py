"""Where `gallery build`'s time goes: CPU per item by stage, or a profile of one build.

Default: the build's rows (pocketvec.runtime.gallery.item_rows, printed text not read) on the first ITEMS images,
after a one-item warm-up, with each stage's thread CPU time summed (time.thread_time inside the stage): reading
and hashing, decoding, the view simulation and preprocessing run on the preparing threads; onnxruntime and the
blend on the calling thread. Also onnxruntime's CPU per image by batch size (random inputs).
`--profile`: cProfile (wall clock) of one `build_gallery` call, the functions with the most time of their own;
it imports only build_gallery, so it profiles any revision of pocketvec put on the import path.

    python experiments/gallery_build_cost.py MODEL.onnx WORK/dev/lookalikes/gallery --items 60 --views 8 --threads 1
    python experiments/gallery_build_cost.py MODEL.onnx WORK/dev/lookalikes/gallery --items 100 --threads 2 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery.views import GalleryViews

BATCHES = (1, 9, 27, 54)


def stage_costs(engine, paths: list[Path], views: GalleryViews) -> None:
    from pocketvec.runtime.gallery import item_rows as rows

    spent: dict[str, float] = {}
    lock = threading.Lock()

    def timed(name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    spent[name] = spent.get(name, 0.0) + time.thread_time() - start
        return wrapper

    stages = {"content_hash": "read and hash", "load_image": "decode", "view_photos": "simulate the views",
              "prepare_image": "preprocess", "prepare_item": "preparing threads, in all",
              "_embed_batch": "calling thread: onnxruntime and the blend"}
    for name, what in stages.items():
        setattr(rows, name, timed(what, getattr(rows, name)))
    rows.item_rows(engine, paths[:1], views)
    spent.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    rows.item_rows(engine, paths, views)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = len(paths)
    print(f"{n} items, {views.count} views: wall {1000 * wall / n:.0f} ms/item ({n / wall:.2f} items/s), process CPU "
          f"{1000 * cpu / n:.0f} ms/item, load average {os.getloadavg()[0]:.1f}")
    for what, seconds in spent.items():
        print(f"  {what}: {1000 * seconds / n:.1f} ms CPU/item")
    size = engine.metadata.preprocess.input_size
    inputs = np.random.default_rng(0).integers(0, 256, (max(BATCHES), size, size, 3), dtype=np.uint8)
    engine.run_outputs(inputs[:1])
    for batch in BATCHES:
        cpu = time.process_time()
        for start in range(0, len(inputs), batch):
            engine.run_outputs(inputs[start : start + batch])
        print(f"  onnxruntime, batch {batch}: {1000 * (time.process_time() - cpu) / len(inputs):.1f} ms CPU/image")


def profile(engine, paths: list[Path], views: GalleryViews, top: int) -> None:
    from pocketvec.runtime.enroll import build_gallery

    with tempfile.TemporaryDirectory() as work:
        folder, warm = Path(work, "items"), Path(work, "warm-up")
        for target, chosen in ((folder, paths), (warm, paths[:1])):
            target.mkdir()
            for path in chosen:
                shutil.copy(path, target / path.name)
        build_gallery(engine, warm, views=views)
        profiler = cProfile.Profile()
        wall, cpu = time.perf_counter(), time.process_time()
        profiler.enable()
        build_gallery(engine, folder, views=views)
        profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{len(paths)} items, {views.count} views: {wall:.1f} s, {len(paths) / wall:.2f} items/s, process CPU "
          f"{1000 * cpu / len(paths):.0f} ms/item (profiled), load average {os.getloadavg()[0]:.1f}")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("items", type=Path, help="a folder of item images (the first --items of them, sorted)")
    parser.add_argument("--items", dest="count", type=int, default=60)
    parser.add_argument("--views", type=int, default=GalleryViews.count)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--profile", action="store_true", help="cProfile one build_gallery instead")
    parser.add_argument("--top", type=int, default=30, help="functions listed by --profile")
    args = parser.parse_args()
    engine = open_engine(args.model, "auto", args.threads)
    paths = sorted(p for p in args.items.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[: args.count]
    views = GalleryViews(count=args.views)
    if args.profile:
        profile(engine, paths, views, args.top)
    else:
        stage_costs(engine, paths, views)


if __name__ == "__main__":
    main()
