// The `.pvg` gallery file, exactly as docs/FORMATS.md (and pocketvec.runtime.gallery.file):
// little-endian magic "PVGALLRY", uint32 version 2, uint32 header_len, UTF-8 JSON header padded
// with spaces so the payload starts at a multiple of 16, row-major embeddings, then the 32-byte
// sha256 of every byte before it. Version 3 is version 2 with the rows' local maps for the local
// re-rank: `local_shape` [locations, channels] in the header, count x locations x channels float16
// after the embeddings. Version 1 (payload_sha256 in the header, no trailer) still reads.

import { sha256Hex } from "./decode.js";
import { checkHeader, GalleryFileError, MAX_DEPTH, nestingDepth } from "./gallery_header.js";

export { GalleryFileError };

const MAGIC = "PVGALLRY";
const VERSION = 2;
const LOCALS_VERSION = 3;
const READABLE_VERSIONS = [1, 2, 3];
const PREAMBLE = 16;
const CHECKSUM_SIZE = 32;
const MAX_HEADER_BYTES = 256 * 2 ** 20;
const ITEMSIZE = { float32: 4, float16: 2, int8: 1 };

async function sha256Bytes(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of x, rounded to nearest even as numpy's astype(float16). */
function floatToHalf(x) {
  f32[0] = x;
  const bits = u32[0], sign = (bits >>> 16) & 0x8000, exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  const shift = e <= 0 ? 14 - e : 13; // subnormal halves keep fewer mantissa bits
  if (shift > 24) return sign;
  if (e <= 0) mant |= 0x800000;
  let half = (e <= 0 ? 0 : e << 10) | (mant >>> shift);
  const rem = mant & ((1 << shift) - 1), halfway = 1 << (shift - 1);
  if (rem > halfway || (rem === halfway && (half & 1))) half++; // a carry into the exponent is right
  return sign | half;
}

/** x rounded to the nearest float16 (as stored in a gallery's local maps), as float32 values. */
export function toHalfPrecision(values) {
  return Float32Array.from(values, (v) => halfToFloat(floatToHalf(v)));
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

const UNIT_TOLERANCE = 1e-2; // as pocketvec.runtime.unit_norm
const DAMAGED = "(the gallery was edited or damaged; rebuild it)";

/** The first vector (of length `dim`) that is not a unit vector, as pocketvec.runtime.unit_norm judges it: a
 * float vector's norm within UNIT_TOLERANCE of 1; an int8 row (decoded q / 127) when some unit vector rounds
 * to it; with `allowZero` an all-zero vector (a local map location) passes. -> {index, problem} or null. */
function firstNotUnit(values, dim, int8, allowZero) {
  for (let start = 0; start < values.length; start += dim) {
    let low = 0, high = 0;
    for (let k = start; k < start + dim; k++) {
      if (int8) {
        const q = Math.abs(Math.round(values[k] * 127));
        low += Math.max(q - 0.5, 0) ** 2;
        high += (q + 0.5) ** 2;
      } else {
        low += values[k] ** 2;
      }
    }
    low = int8 ? Math.sqrt(low) / 127 : Math.sqrt(low);
    high = int8 ? Math.sqrt(high) / 127 : low;
    if (allowZero && high === 0) continue;
    if (!(low <= 1 + UNIT_TOLERANCE && high >= 1 - UNIT_TOLERANCE)) {
      const norm = low === high ? low.toPrecision(4) : `between ${low.toPrecision(4)} and ${high.toPrecision(4)} (int8 rounding)`;
      return { index: start / dim, problem: `norm ${norm}, not a unit vector` };
    }
  }
  return null;
}

function parseHeader(bytes, source) {
  if (bytes.byteLength > MAX_HEADER_BYTES) {
    throw new GalleryFileError(`${source}: gallery header is ${bytes.byteLength} bytes, more than the ${MAX_HEADER_BYTES} allowed`);
  }
  const depth = nestingDepth(bytes);
  if (depth > MAX_DEPTH) {
    throw new GalleryFileError(`${source}: gallery header is nested ${depth} deep, more than the ${MAX_DEPTH} allowed`);
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new GalleryFileError(`${source}: gallery header is not valid JSON (${e.message})`);
  }
}

/** Parse and verify a .pvg (ArrayBuffer) -> {header, vectors: Float32Array(count * dim), checksum, version}.
 * `checksum` (hex) identifies the file: the whole-file sha256 (version 2) or payload_sha256 (version 1). */
export async function decodeGallery(buffer, source = "gallery") {
  let bytes = new Uint8Array(buffer);
  if (bytes.byteLength < PREAMBLE) {
    throw new GalleryFileError(`${source}: not a pocketvec gallery (file is ${bytes.byteLength} bytes, too short)`);
  }
  const magic = new TextDecoder("latin1").decode(bytes.subarray(0, 8));
  if (magic !== MAGIC) throw new GalleryFileError(`${source}: not a pocketvec gallery (magic ${JSON.stringify(magic)}, expected "${MAGIC}")`);
  const view = new DataView(buffer);
  const version = view.getUint32(8, true), headerLen = view.getUint32(12, true);
  if (!READABLE_VERSIONS.includes(version)) {
    throw new GalleryFileError(`${source}: gallery format version ${version} is not supported (this app reads ${READABLE_VERSIONS.join(", ")})`);
  }
  let checksum = null;
  if (version >= 2) {
    if (bytes.byteLength < PREAMBLE + CHECKSUM_SIZE) {
      throw new GalleryFileError(`${source}: truncated gallery (no room for the ${CHECKSUM_SIZE}-byte checksum)`);
    }
    const body = bytes.subarray(0, bytes.byteLength - CHECKSUM_SIZE);
    checksum = toHex(await sha256Bytes(body));
    if (checksum !== toHex(bytes.subarray(body.byteLength))) {
      throw new GalleryFileError(`${source}: gallery checksum mismatch (the file was modified, truncated or damaged)`);
    }
    bytes = body;
  }
  const end = PREAMBLE + headerLen;
  if (end > bytes.byteLength) {
    throw new GalleryFileError(`${source}: truncated gallery (header needs ${end} bytes, file has ${bytes.byteLength})`);
  }
  const header = parseHeader(bytes.subarray(PREAMBLE, end), source);
  checkHeader(header, source, version);
  const payload = bytes.subarray(end);
  const shape = header.local_shape;
  const vectorBytes = header.count * header.dim * ITEMSIZE[header.dtype];
  const expected = vectorBytes + (shape ? header.count * shape[0] * shape[1] * 2 : 0);
  if (payload.byteLength !== expected) {
    const maps = shape ? ` + ${header.count} x ${shape[0]} x ${shape[1]} float16` : "";
    throw new GalleryFileError(`${source}: ${payload.byteLength < expected ? "truncated" : "oversized"} gallery payload `
      + `(${payload.byteLength} bytes, expected ${expected} for ${header.count} x ${header.dim} ${header.dtype}${maps})`);
  }
  if (version === 1) {
    if ((await sha256Hex(payload)) !== header.payload_sha256) {
      throw new GalleryFileError(`${source}: gallery payload checksum mismatch (the file was modified or damaged)`);
    }
    checksum = header.payload_sha256;
    console.warn(`${source}: gallery format version 1 (its checksum does not cover the header); export it again to save it as version 2`);
  }
  const vectors = decodePayload(payload.subarray(0, vectorBytes), header.dtype);
  if (!vectors.every(Number.isFinite)) throw new GalleryFileError(`${source}: gallery holds non-finite embeddings`);
  const locals = shape ? decodePayload(payload.subarray(vectorBytes), "float16") : null;
  if (locals && !locals.every(Number.isFinite)) throw new GalleryFileError(`${source}: gallery holds non-finite local maps`);
  const badRow = firstNotUnit(vectors, header.dim, header.dtype === "int8", false);
  if (badRow) throw new GalleryFileError(`${source}: row ${badRow.index}: ${badRow.problem} ${DAMAGED}`);
  const badLocation = locals ? firstNotUnit(locals, shape[1], false, true) : null;
  if (badLocation) {
    const row = Math.floor(badLocation.index / shape[0]), location = badLocation.index % shape[0];
    throw new GalleryFileError(`${source}: row ${row}, local map location ${location}: ${badLocation.problem} ${DAMAGED}`);
  }
  return { header, vectors, locals, checksum, version };
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

/** Keys sorted at every level, as Python's json.dumps(sort_keys=True). */
function sortedKeys(value) {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortedKeys(value[k])]));
}

function encodeHalf(values) {
  const out = new Uint8Array(values.length * 2), view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint16(i * 2, floatToHalf(v), true));
  return out;
}

/** The file's bytes for a header and float32 rows (count * dim), version 2; with `locals` (count *
 * locations * channels, the header holding local_shape) version 3: the same bytes as
 * pocketvec.runtime.gallery.file.encode writes for the same header and rows. */
export async function encodeGallery(header, vectors, locals = null) {
  let payload = encodePayload(vectors, header.dtype);
  if (locals) {
    const maps = encodeHalf(locals), both = new Uint8Array(payload.byteLength + maps.byteLength);
    both.set(payload);
    both.set(maps, payload.byteLength);
    payload = both;
  }
  let text = new TextEncoder().encode(JSON.stringify(sortedKeys(header)));
  const pad = (16 - ((PREAMBLE + text.byteLength) % 16)) % 16;
  if (pad) text = new Uint8Array([...text, ...new Uint8Array(pad).fill(0x20)]);
  const bodyLength = PREAMBLE + text.byteLength + payload.byteLength;
  const out = new Uint8Array(bodyLength + CHECKSUM_SIZE);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, locals ? LOCALS_VERSION : VERSION, true);
  view.setUint32(12, text.byteLength, true);
  out.set(text, PREAMBLE);
  out.set(payload, PREAMBLE + text.byteLength);
  out.set(await sha256Bytes(out.subarray(0, bodyLength)), bodyLength);
  return out;
}
