"""Why an exported file's top-1 answers flip: the float model's margin (best minus second-best item score) on the
photos whose answer changed, against the margins of all photos. Plain cosine and re-ranked, as verify scores them.

    python experiments/parity_margins.py src/pocketvec/assets/small /tmp/w8/photos src/pocketvec/assets/demo_items \
        small.int8.onnx small.w8a8.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pocketvec.export.calibration import list_images, load_batch
from pocketvec.export.parity import Outputs, top1_with_margins
from pocketvec.export.source import load_export_source
from pocketvec.export.verify import MAX_IMAGES, embed_with, torch_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("images")
    parser.add_argument("gallery")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    model, metadata = load_export_source(args.run_dir)
    spec, space = metadata.preprocess, metadata.embedding_space_id
    pixels = load_batch(list_images(args.images, MAX_IMAGES), spec)
    gallery = load_batch(list_images(args.gallery, MAX_IMAGES), spec)
    reference = torch_outputs(model, pixels, gallery)
    for path in args.files:
        queries, items = embed_with(path, pixels, space), embed_with(path, gallery, space)
        candidate = Outputs(queries.embeddings, items.embeddings, queries.locals, items.locals)
        local = queries.metadata.local_rerank
        for rerank in (None, local) if local else (None,):
            ref_top, ref_stats = top1_with_margins(reference, False, rerank)  # local maps used only to re-rank
            got_top, _ = top1_with_margins(candidate, False, rerank)
            flipped = ref_top != got_top
            print(f"{path.name} ({'re-ranked' if rerank else 'cosine'}): top-1 agreement {1 - flipped.mean():.3f}, "
                  f"{flipped.sum()} of {len(flipped)} flipped; float margins of the flipped "
                  f"{[round(float(m), 4) for m in np.sort(ref_stats[flipped, 1])]}; median margin of all "
                  f"{np.median(ref_stats[:, 1]):.4f}")


if __name__ == "__main__":
    main()
