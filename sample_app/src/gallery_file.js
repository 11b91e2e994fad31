// The `.pvg` gallery file, exactly as docs/FORMATS.md (and pocketvec.runtime.gallery_file):
// little-endian magic "PVGALLRY", uint32 version 1, uint32 header_len, UTF-8 JSON header padded
// with spaces so the payload starts at a multiple of 16, then row-major embeddings.

import { sha256Hex } from "./decode.js";

const MAGIC = "PVGALLRY";
const VERSION = 1;
const PREAMBLE = 16;
const ITEMSIZE = { float32: 4, float16: 2, int8: 1 };
const HEADER_KEYS = ["accept_rule", "count", "created_by", "dim", "dtype", "embedding_space_id", "labels",
  "payload_sha256", "sources"];

export class GalleryFileError extends Error {}

function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Decoded float32 rows (count * dim) from the stored payload bytes. */
function decodePayload(bytes, dtype) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / ITEMSIZE[dtype];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (dtype === "float32") out[i] = view.getFloat32(i * 4, true);
    else if (dtype === "float16") out[i] = halfToFloat(view.getUint16(i * 2, true));
    else out[i] = Math.fround(view.getInt8(i) / 127); // int8: q / 127
  }
  return out;
}

function checkHeader(header, source) {
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new GalleryFileError(`${source}: gallery header must be a JSON object`);
  }
  const missing = HEADER_KEYS.filter((k) => !(k in header));
  if (missing.length) throw new GalleryFileError(`${source}: gallery header lacks keys ${JSON.stringify(missing)}`);
  if (!(header.dtype in ITEMSIZE)) {
    throw new GalleryFileError(`${source}: gallery dtype must be one of float16, float32, int8. Got ${JSON.stringify(header.dtype)}.`);
  }
  const { count, dim } = header;
  if (!Number.isInteger(count) || !Number.isInteger(dim) || count < 0 || dim <= 0) {
    throw new GalleryFileError(`${source}: gallery count/dim must be non-negative integers. Got ${count}, ${dim}.`);
  }
  for (const key of ["labels", "sources"]) {
    const v = header[key];
    if (!Array.isArray(v) || v.length !== count || !v.every((s) => typeof s === "string")) {
      throw new GalleryFileError(`${source}: gallery '${key}' must be a list of ${count} strings`);
    }
  }
}

/** Parse and verify a .pvg (ArrayBuffer) -> {header, vectors: Float32Array(count * dim)}. */
export async function decodeGallery(buffer, source = "gallery") {
  const bytes = new Uint8Array(buffer);
  if (bytes.byteLength < PREAMBLE) {
    throw new GalleryFileError(`${source}: not a pocketvec gallery (file is ${bytes.byteLength} bytes, too short)`);
  }
  const magic = new TextDecoder("latin1").decode(bytes.subarray(0, 8));
  if (magic !== MAGIC) throw new GalleryFileError(`${source}: not a pocketvec gallery (magic ${JSON.stringify(magic)}, expected "${MAGIC}")`);
  const view = new DataView(buffer);
  const version = view.getUint32(8, true), headerLen = view.getUint32(12, true);
  if (version !== VERSION) {
    throw new GalleryFileError(`${source}: gallery format version ${version} is not supported (this app reads ${VERSION})`);
  }
  const end = PREAMBLE + headerLen;
  if (end > bytes.byteLength) {
    throw new GalleryFileError(`${source}: truncated gallery (header needs ${end} bytes, file has ${bytes.byteLength})`);
  }
  let header;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(PREAMBLE, end)));
  } catch (e) {
    throw new GalleryFileError(`${source}: gallery header is not valid JSON (${e.message})`);
  }
  checkHeader(header, source);
  const payload = bytes.subarray(end);
  const expected = header.count * header.dim * ITEMSIZE[header.dtype];
  if (payload.byteLength !== expected) {
    throw new GalleryFileError(`${source}: ${payload.byteLength < expected ? "truncated" : "oversized"} gallery payload `
      + `(${payload.byteLength} bytes, expected ${expected} for ${header.count} x ${header.dim} ${header.dtype})`);
  }
  if ((await sha256Hex(payload)) !== header.payload_sha256) {
    throw new GalleryFileError(`${source}: gallery payload checksum mismatch (the file was modified or damaged)`);
  }
  const vectors = decodePayload(payload, header.dtype);
  if (!vectors.every(Number.isFinite)) throw new GalleryFileError(`${source}: gallery holds non-finite embeddings`);
  return { header, vectors };
}

function encodePayload(vectors, dtype) {
  if (dtype === "float32") {
    const out = new Uint8Array(vectors.length * 4), view = new DataView(out.buffer);
    vectors.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return out;
  }
  if (dtype === "int8") { // round(x * 127) of the unit vector, as numpy's rint in float32
    return new Uint8Array(Int8Array.from(vectors, (v) => Math.max(-127, Math.min(127, roundHalfEven(Math.fround(v * 127))))).buffer);
  }
  throw new GalleryFileError(`this app writes galleries as float32 or int8. Got ${JSON.stringify(dtype)}.`);
}

function sortedKeys(obj) {
  return Object.fromEntries(Object.keys(obj).sort().map((k) => [k, obj[k]]));
}

/** The file's bytes for a header (without payload_sha256) and float32 rows (count * dim). */
export async function encodeGallery(header, vectors) {
  const payload = encodePayload(vectors, header.dtype);
  const full = sortedKeys({ ...header, payload_sha256: await sha256Hex(payload) });
  let text = new TextEncoder().encode(JSON.stringify(full));
  const pad = (16 - ((PREAMBLE + text.byteLength) % 16)) % 16;
  if (pad) text = new Uint8Array([...text, ...new Uint8Array(pad).fill(0x20)]);
  const out = new Uint8Array(PREAMBLE + text.byteLength + payload.byteLength);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, text.byteLength, true);
  out.set(text, PREAMBLE);
  out.set(payload, PREAMBLE + text.byteLength);
  return out;
}
