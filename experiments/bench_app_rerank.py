"""What one match costs in the sample app's JavaScript matcher: plain cosine against the local re-rank.

Serves the sample app (`pocketvec.app_server`) with MODEL, opens it in Debian's Chromium (headless, as the
app tests do) and times `Gallery.match` (sample_app/src/gallery.js) on random unit rows of the model's
embedding dim and local shape: a gallery of ITEMS rows, one query, the median of 30 matches after 3
warm-ups. This is the page's matcher on this machine's CPU, not a phone's; the model's inference is not
included (the page reports it per photo).

    pocketvec export onnx src/pocketvec/assets/base --quantize int8 --out /tmp/base.onnx
    python experiments/bench_app_rerank.py /tmp/base.onnx --items 255,1000
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import app_page

from pocketvec.runtime.engines import open_engine

TIME_MATCH = """async ([items, dim, rerank]) => {
  const { Gallery } = await import("/src/gallery.js");
  const unit = (n) => { const v = Float32Array.from({ length: n }, () => Math.random() - 0.5);
                        const s = Math.hypot(...v); return v.map((x) => x / s); };
  const maps = (r) => { const out = new Float32Array(r.locations * r.channels);
    for (let i = 0; i < r.locations; i++) out.set(unit(r.channels), i * r.channels); return out; };
  const timed = (gallery, query, local) => {
    for (let i = 0; i < 3; i++) gallery.match(query, 3, { threshold: 0.5, margin: 0 }, local);
    const ms = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      gallery.match(query, 3, { threshold: 0.5, margin: 0 }, local);
      ms.push(performance.now() - t);
    }
    return ms.sort((a, b) => a - b)[15];
  };
  const plain = new Gallery("s", dim), reranked = new Gallery("s", dim, null, rerank);
  for (let i = 0; i < items; i++) {
    const e = unit(dim);
    plain.add(`item ${i}`, `source ${i}`, e);
    reranked.add(`item ${i}`, `source ${i}`, e, null, maps(rerank));
  }
  return { plain: timed(plain, unit(dim), null), reranked: timed(reranked, unit(dim), maps(rerank)) };
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an ONNX model exported with its local output")
    parser.add_argument("--items", default="255,1000", help="gallery sizes (comma-separated)")
    args = parser.parse_args()
    meta = open_engine(args.model).metadata
    if meta.local_rerank is None:
        raise SystemExit(f"{args.model}: exported without the local output (--no-local-rerank)")
    with app_page(args.model) as page:
        rerank = meta.local_rerank.to_dict()
        for items in (int(n) for n in args.items.split(",")):
            ms = page.evaluate(TIME_MATCH, [items, meta.embedding_dim, rerank])
            print(f"{items} items, {meta.embedding_dim}-d, maps {rerank['locations']} x {rerank['channels']}: "
                  f"plain {ms['plain']:.2f} ms, re-ranked {ms['reranked']:.2f} ms per match (median of 30)")


if __name__ == "__main__":
    main()
