// Read printed text on an image in the browser, as src/pocketvec/runtime/text_reader.py and printed_text.py
// do: the same PP-OCR detection (DB) and recognition (CTC) ONNX files on onnxruntime-web (wasm), the same
// resize, normalisation, box post-processing and greedy CTC decoding (the OpenCV parts in cv_ops.js).
// The files come from `ocr/<name>/` beside the page (`pocketvec app serve` serves the installed
// `pocketvec[text]` extra's): det.onnx, rec.onnx, and keys.txt (one character a line) or, without it, the
// recogniser's own "character" metadata.

import * as ort from "../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { dilate2x2, meanInside, minAreaRect, perspective, regions, resizeLinear, rotate90, roundHalfEven,
  boxPoints, warpCubic } from "./cv_ops.js";
import { cropImage } from "./item_zoom.js";
import { readOnnxMetadata } from "./onnx_metadata.js";
import { resize } from "./preprocess.js";

export const ITEM_DETECT_SIDE = 960; // a clean item image is read at this long side (printed_text.py)
export const PHOTO_DETECT_SIDE = 640; // a photo is read at this long side
export const READ_MAX_SIDE = 2048; // images are read at most this large
export const TEXT_MARGIN_PERCENT = 5; // an item's region is read grown by this much of its sides on each side
const DET_MEAN = [0.485, 0.456, 0.406], DET_STD = [0.229, 0.224, 0.225]; // BGR order, as PaddleOCR
const PIXEL_THRESHOLD = 0.3, BOX_THRESHOLD = 0.5, UNCLIP_RATIO = 1.6, MIN_SIDE = 3;
const REC_HEIGHT = 48, MAX_REC_WIDTH = 48 * 40, MAX_LINES = 64;
const LINE_BREAKS = /\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]/; // str.splitlines()

export class TextReaderError extends Error {}

/** CTC classes: blank, the characters (one a line), a space. */
export function ctcKeys(text, source) {
  const chars = text.split(LINE_BREAKS);
  if (chars.length && chars[chars.length - 1] === "") chars.pop();
  if (!chars.length) throw new TextReaderError(`${source}: no recognition characters found`);
  return ["", ...chars, " "];
}

/** The image as printed_text.read_text decodes it: shrunk (Lanczos, aspect kept as Pillow's thumbnail) to at
 * most READ_MAX_SIDE. */
export function readable(img, maxSide = READ_MAX_SIDE) {
  const { width: w, height: h } = img;
  if (Math.max(w, h) <= maxSide) return img;
  const aspect = w / h, pick = (n, key) => Math.max(1, [Math.floor(n), Math.ceil(n)].reduce((a, b) => (key(b) < key(a) ? b : a)));
  const size = aspect >= 1
    ? [maxSide, pick(maxSide / aspect, (n) => (n === 0 ? 0 : Math.abs(aspect - maxSide / n)))]
    : [pick(maxSide * aspect, (n) => Math.abs(aspect - n / maxSide)), maxSide];
  return resize(img, size[0], size[1], "lanczos");
}

/** The pixels [top, left, bottom, right) read for an item's `region` [top, left, bottom, right), found in the photo
 * decoded whole (regionHeight x regionWidth), in the photo as decoded for reading (height x width): scaled there
 * (outwards), grown by `marginPercent` of its height and width on each side, within the photo (printed_text.text_box;
 * every quotient floored or ceiled from exact integers, so the same pixels). */
export function textBox([top, left, bottom, right], regionHeight, regionWidth, height, width,
  marginPercent = TEXT_MARGIN_PERCENT) {
  const t = Math.floor(top * height / regionHeight), b = Math.ceil(bottom * height / regionHeight);
  const l = Math.floor(left * width / regionWidth), r = Math.ceil(right * width / regionWidth);
  const dy = Math.floor((b - t) * marginPercent / 100), dx = Math.floor((r - l) * marginPercent / 100);
  return [Math.max(0, t - dy), Math.max(0, l - dx), Math.min(height, b + dy), Math.min(width, r + dx)];
}

/** What a photo's text is read from (RGB, as decoded whole): the photo shrunk for reading, or with its item's
 * `region` [top, left, bottom, right) (zoomed_photo.js) only that region's pixels of it (printed_text.read_text). */
export function textImage(img, region = null) {
  const shown = readable(img);
  return region ? cropImage(shown, textBox(region, img.height, img.width, shown.height, shown.width)) : shown;
}

/** Top-left, top-right, bottom-right, bottom-left (text_reader._clockwise, stable sorts). */
function clockwise(corners) {
  const byX = [...corners].sort((a, b) => a[0] - b[0]);
  const [topLeft, bottomLeft] = byX.slice(0, 2).sort((a, b) => a[1] - b[1]);
  const [topRight, bottomRight] = byX.slice(2).sort((a, b) => a[1] - b[1]);
  return [topLeft, topRight, bottomRight, bottomLeft];
}

/** An RGB image to a BGR NCHW float tensor: (x / 255 - mean) / std per BGR channel. */
function bgrTensor(img, mean, std) {
  const plane = img.width * img.height, out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const source = 2 - c; // BGR
    for (let i = 0; i < plane; i++) out[c * plane + i] = (img.data[i * 3 + source] / 255 - mean[c]) / std[c];
  }
  return new ort.Tensor("float32", out, [1, 3, img.height, img.width]);
}

/** The box cut out as an upright rectangle; a box much taller than wide is turned to lie (_upright_crop). */
function uprightCrop(img, c) {
  const dist = (a, b) => Math.hypot(a[0] - b[0], a[1] - b[1]);
  const width = Math.max(Math.trunc(Math.max(dist(c[0], c[1]), dist(c[2], c[3]))), 1);
  const height = Math.max(Math.trunc(Math.max(dist(c[0], c[3]), dist(c[1], c[2]))), 1);
  const crop = warpCubic(img, perspective([[0, 0], [width, 0], [width, height], [0, height]], c), width, height);
  return height >= 1.5 * width ? rotate90(crop) : crop;
}

async function fetchBytes(url, required = true) {
  const response = await fetch(url).catch((e) => { throw new TextReaderError(`${url}: cannot fetch (${e.message || e})`); });
  if (!response.ok) {
    if (!required && response.status === 404) return null;
    throw new TextReaderError(`${url}: cannot load (HTTP ${response.status})`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

export class TextReader {
  constructor(name, det, rec, keys) {
    Object.assign(this, { name, det, rec, keys });
  }

  /** The reader of the OCR models `name` served under `base` (e.g. "ocr/ppocrv5/"). */
  static async load(name, base) {
    const [det, rec, keys] = await Promise.all([fetchBytes(`${base}det.onnx`), fetchBytes(`${base}rec.onnx`),
      fetchBytes(`${base}keys.txt`, false)]);
    const open = async (bytes, what) => {
      try {
        return await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      } catch (e) {
        throw new TextReaderError(`${base}${what}: onnxruntime-web cannot open it (${e.message || e})`);
      }
    };
    const keysText = keys ? new TextDecoder().decode(keys) : readOnnxMetadata(rec.buffer).character || "";
    const reader = new TextReader(name, await open(det, "det.onnx"), await open(rec, "rec.onnx"),
      ctcKeys(keysText, `${base}${keys ? "keys.txt" : "rec.onnx"}`));
    return reader;
  }

  /** The image's text (RGB {width, height, data}), one line per detected line, top to bottom (read_text). */
  async readText(img, detectSide = PHOTO_DETECT_SIDE) {
    return (await this.read(readable(img), detectSide)).map((line) => line.text).join("\n");
  }

  /** Lines {text, confidence, box} of printed text, top to bottom. */
  async read(img, detectSide = PHOTO_DETECT_SIDE) {
    const lines = [];
    for (const box of await this.detect(img, detectSide)) {
      const { text, confidence } = await this.recognise(uprightCrop(img, box));
      if (text.trim()) lines.push({ text, confidence, box });
    }
    return lines.sort((a, b) => a.box[0][1] - b.box[0][1] || a.box[0][0] - b.box[0][0]);
  }

  /** Text boxes (4 corners, image pixels), the most confident first. */
  async detect(img, detectSide = PHOTO_DETECT_SIDE) {
    const { width: w, height: h } = img, scale = Math.min(1, detectSide / Math.max(h, w));
    const sizeH = Math.max(32, roundHalfEven(h * scale / 32) * 32), sizeW = Math.max(32, roundHalfEven(w * scale / 32) * 32);
    const input = bgrTensor(resizeLinear(img, sizeW, sizeH), DET_MEAN, DET_STD);
    const result = await this.det.run({ [this.det.inputNames[0]]: input });
    const probability = result[this.det.outputNames[0]].data;
    const mask = new Uint8Array(sizeW * sizeH);
    for (let i = 0; i < mask.length; i++) mask[i] = probability[i] > PIXEL_THRESHOLD ? 1 : 0;
    const f = Math.fround, sx = f(w / sizeW), sy = f(h / sizeH), found = [];
    for (const points of regions(dilate2x2(mask, sizeW, sizeH), sizeW, sizeH)) {
      const rect = minAreaRect(points);
      if (Math.min(rect.w, rect.h) < MIN_SIDE) continue;
      const score = meanInside(probability, sizeW, sizeH, boxPoints(rect));
      if (score < BOX_THRESHOLD) continue;
      const grow = rect.w * rect.h * UNCLIP_RATIO / (2 * (rect.w + rect.h));
      if (Math.min(rect.w, rect.h) + 2 * grow < MIN_SIDE + 2) continue;
      const corners = clockwise(boxPoints({ ...rect, w: f(rect.w + 2 * grow), h: f(rect.h + 2 * grow) }))
        .map(([x, y]) => [Math.min(Math.max(f(x * sx), 0), w), Math.min(Math.max(f(y * sy), 0), h)]);
      found.push({ score, corners });
    }
    return found.sort((a, b) => b.score - a.score).slice(0, MAX_LINES).map((b) => b.corners);
  }

  /** One line's text and mean character probability (an RGB crop). */
  async recognise(line) {
    const width = Math.max(1, Math.min(MAX_REC_WIDTH, Math.ceil(REC_HEIGHT * line.width / Math.max(line.height, 1))));
    const input = bgrTensor(resizeLinear(line, width, REC_HEIGHT), [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
    const result = await this.rec.run({ [this.rec.inputNames[0]]: input });
    const output = result[this.rec.outputNames[0]], [, steps, classes] = output.dims, p = output.data;
    if (classes !== this.keys.length) {
      throw new TextReaderError(`OCR models ${this.name}: the recogniser has ${classes} classes, its keys ${this.keys.length}`);
    }
    let text = "", sum = 0, kept = 0, previous = -1;
    for (let t = 0; t < steps; t++) {
      let best = 0;
      for (let k = 1; k < classes; k++) if (p[t * classes + k] > p[t * classes + best]) best = k;
      if (best !== 0 && best !== previous) {
        text += this.keys[best];
        sum += p[t * classes + best];
        kept++;
      }
      previous = best;
    }
    return { text, confidence: kept ? sum / kept : 0 };
  }
}
