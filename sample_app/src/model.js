// The exported encoder in the browser: onnxruntime-web (wasm backend, files served from
// node_modules, no CDN) and the pocketvec metadata read from the model file itself.

import * as ort from "../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { isDigest } from "./gallery_header.js";
import { parseCodebook } from "./local_codes.js";
import { readOnnxMetadata } from "./onnx_metadata.js";
import { preprocess, toNCHW } from "./preprocess.js";

export const INPUT_NAME = "image";
export const OUTPUT_NAME = "embedding";
export const LOCAL_NAME = "local"; // the stride-16 map of a model with a local re-rank
const METADATA_KEY = "pocketvec";
// What a model file without the photo-side local_rerank keys means (pocketvec.runtime.local_rerank).
export const GALLERY_SIDE_ONLY = Object.freeze({ worst_fraction: 0, photo_weight: 0, photo_threshold: 0.5 });

ort.env.wasm.wasmPaths = new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
// Threads need cross-origin isolation (`pocketvec app serve` sends the headers); else one thread.
ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

/** Parse and check the pocketvec metadata JSON (ModelMetadata in the Python runtime). */
export function parseMetadata(props, source) {
  const text = props[METADATA_KEY];
  if (!text) throw new Error(`${source}: no pocketvec metadata (metadata_props["${METADATA_KEY}"]); export it with pocketvec`);
  let meta;
  try {
    meta = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: pocketvec metadata is not valid JSON (${e.message})`);
  }
  const p = meta.preprocess || {};
  for (const [name, ok] of [["preprocess.input_size", Number.isInteger(p.input_size)],
    ["preprocess.crop_mode", typeof p.crop_mode === "string"], ["preprocess.resample", typeof p.resample === "string"],
    ["preprocess.query_crop_mode", p.query_crop_mode == null || typeof p.query_crop_mode === "string"
      || (Array.isArray(p.query_crop_mode) && p.query_crop_mode.length > 0
        && p.query_crop_mode.every((c) => typeof c === "string"))],
    ["embedding_dim", Number.isInteger(meta.embedding_dim)], ["embedding_space_id", typeof meta.embedding_space_id === "string"],
    ["weights_digest", meta.weights_digest == null || isDigest(meta.weights_digest)]]) {
    if (!ok) throw new Error(`${source}: pocketvec metadata lacks a valid ${name}`);
  }
  const r = meta.local_rerank;
  const validRerank = r == null
    || (["top_k", "locations", "channels"].every((k) => Number.isInteger(r[k]) && r[k] > 0) && Number.isFinite(r.weight)
      && Object.keys(GALLERY_SIDE_ONLY).every((k) => r[k] === undefined || Number.isFinite(r[k])));
  if (!validRerank) {
    throw new Error(`${source}: pocketvec metadata has an invalid local_rerank (${JSON.stringify(r)})`);
  }
  if (r != null) meta.local_rerank = { ...GALLERY_SIDE_ONLY, ...r }; // a file from before them re-ranks as it did
  if (r?.codebook != null) { // how compact galleries of this model code their local maps
    meta.local_rerank.codebook = parseCodebook(r.codebook, r.channels);
    if (!meta.local_rerank.codebook) throw new Error(`${source}: pocketvec metadata has an invalid local_rerank codebook`);
  }
  return meta;
}

/** The response body as an ArrayBuffer, reporting (bytes so far, Content-Length or 0) as it arrives. */
async function readWithProgress(response, report) {
  const total = Number(response.headers.get("Content-Length")) || 0;
  if (!response.body) return response.arrayBuffer();
  const reader = response.body.getReader(), chunks = [];
  let loaded = 0;
  report(0, total);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    report(loaded, total);
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return bytes.buffer;
}

export class Model {
  constructor(session, meta, url) {
    this.session = session;
    this.meta = meta;
    this.url = url;
  }

  /** Fetch and open the model; `onStage(stage, loaded, total)` reports "download" (bytes so far, total or 0)
   * and then "engine" (onnxruntime-web loading its wasm and building the session). */
  static async load(url, onStage = () => {}) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: cannot load the model (HTTP ${response.status})`);
    const bytes = await readWithProgress(response, (loaded, total) => onStage("download", loaded, total));
    const meta = parseMetadata(readOnnxMetadata(bytes), url);
    onStage("engine", bytes.byteLength, bytes.byteLength);
    let session;
    try {
      session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    } catch (e) {
      throw new Error(`${url}: onnxruntime-web cannot open the model (${e.message || e})`);
    }
    if (meta.local_rerank && !session.outputNames.includes(LOCAL_NAME)) {
      throw new Error(`${url}: the metadata asks for a local re-rank but the model has no "${LOCAL_NAME}" output`);
    }
    return new Model(session, meta, url);
  }

  /** How items (gallery images) are preprocessed. */
  get spec() {
    return this.meta.preprocess;
  }

  /** The crops a photo to recognise is embedded with: the query crop mode(s), else the items' crop. */
  get photoCrops() {
    const q = this.spec.query_crop_mode ?? this.spec.crop_mode;
    return Array.isArray(q) ? q : [q];
  }

  /** RGB image (an item, or with `query` a photo to recognise) -> {pixels (the model input; a photo's first
   * crop), embedding Float32Array, local (Float32Array of locations x channels, or null without a local
   * re-rank), preprocessMs, inferenceMs}. A photo embedded with several crops gets their fused embedding (the
   * normalised mean) and their local locations side by side, as pocketvec.runtime.photo_crops. */
  async embed(img, query = false) {
    const crops = query ? this.photoCrops : [this.spec.crop_mode];
    const size = this.spec.input_size, dim = this.meta.embedding_dim;
    const sum = new Float64Array(dim), locals = [];
    let first = null, preprocessMs = 0, inferenceMs = 0;
    for (const crop of crops) {
      const t0 = performance.now();
      const pixels = preprocess(img, { ...this.spec, crop_mode: crop });
      const input = new ort.Tensor("float32", toNCHW(pixels), [1, 3, size, size]);
      const t1 = performance.now();
      const result = await this.session.run({ [INPUT_NAME]: input });
      inferenceMs += performance.now() - t1;
      preprocessMs += t1 - t0;
      first ??= pixels;
      const e = Float32Array.from(result[OUTPUT_NAME].data);
      for (let i = 0; i < dim; i++) sum[i] += e[i]; // the mean's direction: the sum's
      if (this.meta.local_rerank) locals.push(Float32Array.from(result[LOCAL_NAME].data));
    }
    const embedding = crops.length === 1 ? Float32Array.from(sum) : unit(sum);
    const local = locals.length === 0 ? null : locals.length === 1 ? locals[0] : concatenated(locals);
    return { pixels: first, embedding, local, preprocessMs, inferenceMs };
  }
}

function unit(v) {
  const norm = Math.max(Math.sqrt(v.reduce((a, x) => a + x * x, 0)), 1e-12);
  return Float32Array.from(v, (x) => x / norm);
}

function concatenated(arrays) {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  arrays.reduce((offset, a) => (out.set(a, offset), offset + a.length), 0);
  return out;
}
