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


class TextAlone:
    """A tier's items grouped by design (the file name's part before `--`), and the verdict of text alone on a
    photo's text: its item first among its group's (right), tied with others (the visual call), or not."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.items = {Path(k).stem: v for k, v in texts.items() if k.startswith("item:gallery/")}
        self.groups: dict[str, list[str]] = collections.defaultdict(list)
        for label in sorted(self.items):
            self.groups[label.split("--")[0]].append(label)

    def verdict(self, label: str, photo_text: str) -> str:
        group = self.groups[label.split("--")[0]]
        scored = evidence(photo_text, [words(self.items[g]) for g in group])
        first = [g for g, e in zip(group, scored, strict=True) if e == scored.max()]
        return "right" if first == [label] else "tied" if label in first else "wrong"


def photo_label(path: str | Path) -> str:
    return re.sub(r"--q\d+$", "", Path(path).stem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    args = parser.parse_args()
    texts = json.loads((args.tier / texts_file(args.models)).read_text())
    alone = TextAlone(texts)
    counts: collections.Counter = collections.Counter()
    for key, text in texts.items():
        if key.startswith("photo:queries/"):
            label = photo_label(key)
            counts[label.split("--")[1], alone.verdict(label, text)] += 1
    for kind in sorted({k for k, _ in counts}):
        print(kind, {v: counts[kind, v] for v in ("right", "tied", "wrong")})
    print("all", {v: sum(n for (_, w), n in counts.items() if w == v) for v in ("right", "tied", "wrong")})

if __name__ == "__main__":
    main()
