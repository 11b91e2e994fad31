"""Text alone: does a photo's text put its own item first among the items of its group (a look-alike
group, a label design: the file names' part before `--`)? Counts per edition kind: right alone, tied with
others (the visual scores decide those), wrong. Reads the texts `pocketvec bench` kept beside the tier.

    python experiments/text_alone.py WORK/dev/labels
"""

from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path

from pocketvec.bench.texts import texts_file
from pocketvec.runtime.text_reader import DEFAULT_MODELS
from pocketvec.runtime.text_verify import evidence, words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    args = parser.parse_args()
    texts = json.loads((args.tier / texts_file(args.models)).read_text())
    items = {Path(k).stem: v for k, v in texts.items() if k.startswith("item:gallery/")}
    groups = collections.defaultdict(list)
    for label in sorted(items):
        groups[label.split("--")[0]].append(label)
    counts: collections.Counter = collections.Counter()
    for key, text in texts.items():
        if not key.startswith("photo:queries/"):
            continue
        label = re.sub(r"--q\d+$", "", Path(key).stem)
        group = groups[label.split("--")[0]]
        scored = evidence(text, [words(items[g]) for g in group])
        first = [g for g, e in zip(group, scored, strict=True) if e == scored.max()]
        verdict = "right" if first == [label] else "tied" if label in first else "wrong"
        counts[label.split("--")[1], verdict] += 1
    for kind in sorted({k for k, _ in counts}):
        print(kind, {v: counts[kind, v] for v in ("right", "tied", "wrong")})
    print("all", {v: sum(n for (_, w), n in counts.items() if w == v) for v in ("right", "tied", "wrong")})


if __name__ == "__main__":
    main()
