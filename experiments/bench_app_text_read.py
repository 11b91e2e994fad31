"""What reading one photo's printed text costs in the sample app: PP-OCRv5 det + rec on onnxruntime-web (wasm).

Serves the sample app (`pocketvec.app_server`) with MODEL and the OCR models of the `pocketvec[text]` extra,
opens it in Debian's Chromium (headless, as the app tests do) and times `TextReader.readText` (sample_app/src/
text_reader.js) on PHOTO as the page reads a photo (long side 640 for the detector): the median of RUNS reads
after one warm-up. For comparison, the Python runtime's reader on the same photo (onnxruntime CPU, one thread,
as the matcher runs it). This machine's CPU, not a phone's.

    python experiments/bench_app_text_read.py MODEL.onnx PHOTO.png --runs 5
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from pathlib import Path

from common import app_page

from pocketvec.runtime.images import load_image
from pocketvec.runtime.printed_text import PHOTO_DETECT_SIDE, read_text, text_reader

TIME_READ = """async ([data, runs, side]) => {
  const { decodeImage } = await import("/src/decode.js");
  const { TextReader } = await import("/src/text_reader.js");
  const reader = await TextReader.load("ppocrv5", "ocr/ppocrv5/");
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const img = await decodeImage(new Blob([bytes]));
  const text = await reader.readText(img, side);
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await reader.readText(img, side);
    ms.push(performance.now() - t);
  }
  const ort = await import("/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs");
  return { ms, text, threads: ort.env.wasm.numThreads };
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="any pocketvec ONNX model (the page needs one to start)")
    parser.add_argument("photo", type=Path, help="a photo with printed text")
    parser.add_argument("--runs", type=int, default=5, help="timed reads after one warm-up")
    args = parser.parse_args()
    with app_page(args.model) as page:
        page.evaluate("() => window.pocketvecApp.ready")
        data = base64.b64encode(args.photo.read_bytes()).decode("ascii")
        out = page.evaluate(TIME_READ, [data, args.runs, PHOTO_DETECT_SIDE])
    reader, rgb = text_reader("ppocrv5", PHOTO_DETECT_SIDE), load_image(args.photo)
    python = read_text(reader, rgb)
    ms = []
    for _ in range(args.runs):
        start = time.perf_counter()
        read_text(reader, rgb)
        ms.append((time.perf_counter() - start) * 1000)
    print(f"{args.photo.name} ({rgb.shape[1]} x {rgb.shape[0]}), {len(out['text'].splitlines())} lines read")
    print(f"Chromium, onnxruntime-web wasm ({out['threads']} threads): {statistics.median(out['ms']):.0f} ms per read "
          f"(median of {args.runs}: {', '.join(f'{m:.0f}' for m in out['ms'])})")
    print(f"Python, onnxruntime CPU (1 thread): {statistics.median(ms):.0f} ms per read (median of {args.runs})")
    print(f"same text as Python: {out['text'] == python}")


if __name__ == "__main__":
    main()
