"""Does reading a photo larger help text verification? Each query photo of a tier is enlarged to SIDE px on its
long side (detection never enlarges by itself) and read; text alone then puts the photo's item first among its
group's (right), ties it with others (the visual call) or not (wrong), as `text_alone.py` counts on the texts
`pocketvec bench` read at the photos' own size.

    python experiments/text_photo_size.py WORK/dev/labels 960
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time
from pathlib import Path

import cv2
from text_alone import TextAlone, photo_label

from pocketvec.bench.texts import texts_file
from pocketvec.runtime.images import load_image
from pocketvec.runtime.printed_text import READ_MAX_SIDE, read_text, text_reader
from pocketvec.runtime.text_reader import DEFAULT_MODELS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tier", type=Path)
    parser.add_argument("side", type=int)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    args = parser.parse_args()
    alone = TextAlone(json.loads((args.tier / texts_file(args.models)).read_text()))
    reader = text_reader(args.models, args.side)
    counts: collections.Counter = collections.Counter()
    times = []
    for path in sorted((args.tier / "queries").glob("*.jpg")):
        rgb = load_image(path, READ_MAX_SIDE)
        h, w = rgb.shape[:2]
        scale = args.side / max(h, w)
        if scale > 1:
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        started = time.perf_counter()
        text = read_text(reader, rgb)
        times.append((time.perf_counter() - started) * 1000)
        counts[alone.verdict(photo_label(path), text)] += 1
    print(json.dumps({"side": args.side, **counts, "median_ms": round(statistics.median(times))}))


if __name__ == "__main__":
    main()
