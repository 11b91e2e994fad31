"""What reading the items' printed text costs at enrolment: the mean and median milliseconds per clean item image (one
thread, the image at most 960 px on its long side, as `gallery build` reads it) and the share of items with
text, for each tier folder given (a benchmark tier's `gallery/`, or any folder of item images).

    python experiments/text_item_read_ms.py WORK/pages/gallery WORK/labels/gallery --items 12
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from pocketvec.runtime.images import is_image_path
from pocketvec.runtime.printed_text import ITEM_DETECT_SIDE, read_text, text_reader
from pocketvec.runtime.text_reader import DEFAULT_MODELS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--items", type=int, default=12, help="items per folder (the first in name order)")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    args = parser.parse_args()
    reader = text_reader(args.models, ITEM_DETECT_SIDE)
    for folder in args.folders:
        images = sorted(p for p in folder.iterdir() if is_image_path(p))[: args.items]
        read_text(reader, images[0])  # the sessions warm up
        times, with_text = [], 0
        for image in images:
            started = time.perf_counter()
            with_text += bool(read_text(reader, image).strip())
            times.append((time.perf_counter() - started) * 1000)
        print(json.dumps({"folder": str(folder), "items": len(images), "mean_ms": round(statistics.mean(times)),
                          "median_ms": round(statistics.median(times)), "with_text": with_text}))


if __name__ == "__main__":
    main()
