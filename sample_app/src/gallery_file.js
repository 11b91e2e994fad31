// The `.pvg` gallery file, exactly as docs/FORMATS.md (and pocketvec.runtime.gallery.file):
// version 5, little-endian: a base (magic "PVGALLRY", uint32 version, uint32 header_len, uint64
// payload_len, UTF-8 JSON header padded with spaces so the payload starts at a multiple of 16,
// row-major embeddings, then the rows' local maps: float16 when the header has `local_shape` alone, or
// compact (`local_codes`: each row's 4-byte content box, then every row's codes, local_codes.js), then the
// 32-byte sha256 of every byte of the base before it), then any segments that pocketvec appended
// (magic "PVGSEGMT", each with its own header, rows and checksum: pocketvec.runtime.gallery.segments).
// Version 4 (no compact maps), versions 2 and 3 (a 16-byte preamble, the payload runs to the checksum at the
// end) and version 1 (payload_sha256 in the header, no trailer) still read. This app writes version 5 without
// segments.

import { sha256Hex } from "./decode.js";
import { checkHeader, checkSegmentHeader, GalleryFileError, MAX_DEPTH, nestingDepth } from "./gallery_header.js";
import { BOX_BYTES, checkerCount } from "./local_codes.js";

export { GalleryFileError };

const MAGIC = "PVGALLRY";
const VERSION = 5;
const READABLE_VERSIONS = [1, 2, 3, 4, 5];
const PREAMBLE = 16; // versions 1-3: magic, version, header_len
const BASE = 24; // version 4: magic, version, header_len, payload_len
const SEGMENT_MAGIC = "PVGSEGMT";
const SEGMENT = 24; // magic, header_len, payload_len, the first 4 bytes of the sha256 of those 20
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

function parseHeader(bytes, source, what) {
  if (bytes.byteLength > MAX_HEADER_BYTES) {
    throw new GalleryFileError(`${source}: ${what} is ${bytes.byteLength} bytes, more than the ${MAX_HEADER_BYTES} allowed`);
  }
  const depth = nestingDepth(bytes);
  if (depth > MAX_DEPTH) {
    throw new GalleryFileError(`${source}: ${what} is nested ${depth} deep, more than the ${MAX_DEPTH} allowed`);
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new GalleryFileError(`${source}: ${what} is not valid JSON (${e.message})`);
  }
}

const latin1 = (bytes) => new TextDecoder("latin1").decode(bytes);
const CHECKSUM_MISMATCH = "checksum mismatch (the file was modified, truncated or damaged)";

/** One checksummed part (the base, a segment) -> {header, vectors, locals, coded, checksum}: its checksum first,
 * then `parse(headerBytes)` -> {header, count}, the payload's size, its rows. Rows are numbered from `firstRow`.
 * Compact maps (`layout` has subvectors): coded = {boxes: Uint8Array(count * 4), codes: Uint8Array}. */
async function checkedPart(bytes, start, headerStart, payloadStart, payloadLen, parse, layout, firstRow, source, what) {
  const end = payloadStart + payloadLen;
  const checksum = toHex(await sha256Bytes(bytes.subarray(start, end)));
  if (checksum !== toHex(bytes.subarray(end, end + CHECKSUM_SIZE))) throw new GalleryFileError(`${source}: ${what} ${CHECKSUM_MISMATCH}`);
  const header = parse(bytes.subarray(headerStart, payloadStart));
  const { dim, dtype, shape, subvectors = 0, coded = 0 } = layout(header), count = header.count;
  const vectorBytes = count * dim * ITEMSIZE[dtype];
  const mapBytes = subvectors ? count * BOX_BYTES + coded * subvectors : shape ? count * shape[0] * shape[1] * 2 : 0;
  const expected = vectorBytes + mapBytes;
  if (payloadLen !== expected) {
    const maps = subvectors ? ` + ${count} content boxes + ${coded} x ${subvectors} code bytes`
      : shape ? ` + ${count} x ${shape[0]} x ${shape[1]} float16` : "";
    throw new GalleryFileError(`${source}: ${payloadLen < expected ? "truncated" : "oversized"} ${what} payload `
      + `(${payloadLen} bytes, expected ${expected} for ${count} x ${dim} ${dtype}${maps})`);
  }
  const vectors = decodePayload(bytes.subarray(payloadStart, payloadStart + vectorBytes), dtype);
  if (subvectors) {
    checkRows(vectors, null, dim, dtype, null, firstRow, source);
    const boxes = bytes.slice(payloadStart + vectorBytes, payloadStart + vectorBytes + count * BOX_BYTES);
    const side = Math.round(Math.sqrt(shape[0]));
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const box = Array.from(boxes.subarray(i * BOX_BYTES, (i + 1) * BOX_BYTES));
      if (box[2] < 1 || box[3] < 1 || box[0] + box[2] > side || box[1] + box[3] > side) {
        throw new GalleryFileError(`${source}: row ${firstRow + i}: content box [${box.join(", ")}] leaves the map ${DAMAGED}`);
      }
      kept += checkerCount(box);
    }
    if (kept !== coded) throw new GalleryFileError(`${source}: its content boxes keep ${kept} locations, the header counts ${coded} ${DAMAGED}`);
    return { header, vectors, locals: null, coded: { boxes, codes: bytes.slice(payloadStart + vectorBytes + count * BOX_BYTES, end) }, checksum };
  }
  const locals = shape ? decodePayload(bytes.subarray(payloadStart + vectorBytes, end), "float16") : null;
  checkRows(vectors, locals, dim, dtype, shape, firstRow, source);
  return { header, vectors, locals, coded: null, checksum };
}

function checkRows(vectors, locals, dim, dtype, shape, firstRow, source) {
  if (!vectors.every(Number.isFinite)) throw new GalleryFileError(`${source}: gallery holds non-finite embeddings`);
  const badRow = firstNotUnit(vectors, dim, dtype === "int8", false);
  if (badRow) throw new GalleryFileError(`${source}: row ${firstRow + badRow.index}: ${badRow.problem} ${DAMAGED}`);
  if (locals && !locals.every(Number.isFinite)) throw new GalleryFileError(`${source}: gallery holds non-finite local maps`);
  const badLocation = locals ? firstNotUnit(locals, shape[1], false, true) : null;
  if (badLocation) {
    const row = Math.floor(badLocation.index / shape[0]), location = badLocation.index % shape[0];
    throw new GalleryFileError(`${source}: row ${firstRow + row}, local map location ${location}: ${badLocation.problem} ${DAMAGED}`);
  }
}

/** The segment at `offset` -> a part, or null when the file ends inside it (an append that did not finish). */
async function readSegment(bytes, offset, base, firstRow, source) {
  const head = bytes.subarray(offset, offset + SEGMENT);
  if (latin1(head.subarray(0, 8)) !== SEGMENT_MAGIC.slice(0, Math.min(8, head.byteLength))) {
    throw new GalleryFileError(`${source}: the bytes at offset ${offset}, after the gallery's rows, are not an appended segment ${DAMAGED}`);
  }
  if (head.byteLength < SEGMENT) return null;
  const view = new DataView(head.buffer, head.byteOffset, SEGMENT);
  if (toHex((await sha256Bytes(head.slice(0, 20))).subarray(0, 4)) !== toHex(head.subarray(20, 24))) {
    throw new GalleryFileError(`${source}: the appended segment at byte ${offset} has a damaged preamble ${DAMAGED}`);
  }
  const headerLen = view.getUint32(8, true), payloadLen = Number(view.getBigUint64(12, true));
  const payloadStart = offset + SEGMENT + headerLen, end = payloadStart + payloadLen + CHECKSUM_SIZE;
  if (end > bytes.byteLength) return null;
  const what = `appended segment at byte ${offset}`;
  const parse = (text) => {
    const header = parseHeader(text, source, `${what}: header`);
    checkSegmentHeader(header, base, `${source}: ${what}`);
    return header;
  };
  const layout = (h) => ({ dim: base.dim, dtype: base.dtype, shape: base.local_shape,
    subvectors: base.local_codes?.subvectors ?? 0, coded: h.coded_locations ?? 0 });
  return { ...(await checkedPart(bytes, offset, offset + SEGMENT, payloadStart, payloadLen, parse, layout, firstRow, source, what)), end };
}

function joinedBytes(arrays) {
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  arrays.reduce((at, a) => (out.set(a, at), at + a.length), 0);
  return out;
}

function joined(arrays) {
  if (arrays.length === 1) return arrays[0];
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  arrays.reduce((at, a) => (out.set(a, at), at + a.length), 0);
  return out;
}

/** Parse and verify a .pvg (ArrayBuffer) -> {header, vectors: Float32Array(count * dim), locals, checksum, version}.
 * `checksum` (hex) identifies the file: its last part's sha256 (version 2 and up) or payload_sha256 (version 1).
 * An append that did not finish (the file ends inside its last segment) is left out, with one console line. */
export async function decodeGallery(buffer, source = "gallery") {
  const bytes = new Uint8Array(buffer), size = bytes.byteLength;
  if (size < PREAMBLE) {
    throw new GalleryFileError(`${source}: not a pocketvec gallery (file is ${size} bytes, too short)`);
  }
  const magic = latin1(bytes.subarray(0, 8));
  if (magic !== MAGIC) throw new GalleryFileError(`${source}: not a pocketvec gallery (magic ${JSON.stringify(magic)}, expected "${MAGIC}")`);
  const view = new DataView(buffer);
  const version = view.getUint32(8, true), headerLen = view.getUint32(12, true);
  if (!READABLE_VERSIONS.includes(version)) {
    throw new GalleryFileError(`${source}: gallery format version ${version} is not supported (this app reads ${READABLE_VERSIONS.join(", ")})`);
  }
  if (version === 1) return decodeVersion1(bytes, headerLen, source);
  const headerStart = version >= 4 ? BASE : PREAMBLE;
  if (size < headerStart + CHECKSUM_SIZE) {
    throw new GalleryFileError(`${source}: truncated gallery (no room for the ${CHECKSUM_SIZE}-byte checksum)`);
  }
  const payloadStart = headerStart + headerLen;
  const payloadLen = version >= 4 ? Number(view.getBigUint64(16, true)) : size - CHECKSUM_SIZE - payloadStart;
  if (payloadLen < 0 || payloadStart + payloadLen + CHECKSUM_SIZE > size) {
    const body = version >= 4 ? size : size - CHECKSUM_SIZE;
    if (version < 4 && toHex(await sha256Bytes(bytes.subarray(0, body))) !== toHex(bytes.subarray(body))) {
      throw new GalleryFileError(`${source}: gallery ${CHECKSUM_MISMATCH}`);
    }
    throw new GalleryFileError(`${source}: truncated gallery (header and rows need ${payloadStart + Math.max(payloadLen, 0)} bytes, file has ${body})`);
  }
  const parse = (text) => {
    const header = parseHeader(text, source, "gallery header");
    checkHeader(header, source, version);
    return header;
  };
  const layout = (h) => ({ dim: h.dim, dtype: h.dtype, shape: h.local_shape, subvectors: h.local_codes?.subvectors ?? 0,
    coded: h.coded_locations ?? 0 });
  const base = await checkedPart(bytes, 0, headerStart, payloadStart, payloadLen, parse, layout, 0, source, "gallery");
  const parts = [base], header = { ...base.header };
  let end = payloadStart + payloadLen + CHECKSUM_SIZE;
  while (version >= 4 && end < size) {
    const segment = await readSegment(bytes, end, base.header, header.count, source);
    if (!segment) {
      console.warn(`${source}: an append that did not finish (${size - end} bytes at byte ${end}) is left out: a writer `
        + "is adding rows now or was stopped mid-write; the next `pocketvec gallery add` or `pocketvec gallery compact` removes it");
      break;
    }
    parts.push(segment);
    header.count += segment.header.count;
    for (const key of ["labels", "sources", "texts"]) if (key in segment.header) header[key] = header[key].concat(segment.header[key]);
    if ("model_digest" in segment.header) header.model_digest = segment.header.model_digest;
    if ("coded_locations" in segment.header) header.coded_locations += segment.header.coded_locations;
    end = segment.end;
  }
  if (parts.length > 1) checkHeader(header, source, version);
  const coded = header.local_codes ? { boxes: joinedBytes(parts.map((p) => p.coded.boxes)), codes: joinedBytes(parts.map((p) => p.coded.codes)) } : null;
  const locals = header.local_shape && !coded ? joined(parts.map((p) => p.locals)) : null;
  return { header, vectors: joined(parts.map((p) => p.vectors)), locals, coded, checksum: parts.at(-1).checksum, version };
}

async function decodeVersion1(bytes, headerLen, source) {
  const end = PREAMBLE + headerLen;
  if (end > bytes.byteLength) {
    throw new GalleryFileError(`${source}: truncated gallery (header needs ${end} bytes, file has ${bytes.byteLength})`);
  }
  const header = parseHeader(bytes.subarray(PREAMBLE, end), source, "gallery header");
  checkHeader(header, source, 1);
  const shape = header.local_shape, vectorBytes = header.count * header.dim * ITEMSIZE[header.dtype];
  const payload = bytes.subarray(end), expected = vectorBytes + (shape ? header.count * shape[0] * shape[1] * 2 : 0);
  if (payload.byteLength !== expected) {
    const maps = shape ? ` + ${header.count} x ${shape[0]} x ${shape[1]} float16` : "";
    throw new GalleryFileError(`${source}: ${payload.byteLength < expected ? "truncated" : "oversized"} gallery payload `
      + `(${payload.byteLength} bytes, expected ${expected} for ${header.count} x ${header.dim} ${header.dtype}${maps})`);
  }
  if ((await sha256Hex(payload)) !== header.payload_sha256) {
    throw new GalleryFileError(`${source}: gallery payload checksum mismatch (the file was modified or damaged)`);
  }
  console.warn(`${source}: gallery format version 1 (its checksum does not cover the header); export it again to save it in the current version`);
  const vectors = decodePayload(payload.subarray(0, vectorBytes), header.dtype);
  const locals = shape ? decodePayload(payload.subarray(vectorBytes), "float16") : null;
  checkRows(vectors, locals, header.dim, header.dtype, shape, 0, source);
  return { header, vectors, locals, checksum: header.payload_sha256, version: 1 };
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

/** The file's bytes for a header and float32 rows (count * dim), version 5 without segments; with `locals`
 * (count * locations * channels, the header holding local_shape) the rows' maps too, or with `coded`
 * ({boxes, codes} bytes, the header holding local_codes) the rows' compact maps: the same bytes as
 * pocketvec.runtime.gallery.file.encode writes for the same header and rows. */
export async function encodeGallery(header, vectors, locals = null, coded = null) {
  let payload = encodePayload(vectors, header.dtype);
  if (locals || coded) {
    const maps = coded ? joinedBytes([coded.boxes, coded.codes]) : encodeHalf(locals), both = new Uint8Array(payload.byteLength + maps.byteLength);
    both.set(payload);
    both.set(maps, payload.byteLength);
    payload = both;
  }
  let text = new TextEncoder().encode(JSON.stringify(sortedKeys(header)));
  const pad = (16 - ((BASE + text.byteLength) % 16)) % 16;
  if (pad) text = new Uint8Array([...text, ...new Uint8Array(pad).fill(0x20)]);
  const bodyLength = BASE + text.byteLength + payload.byteLength;
  const out = new Uint8Array(bodyLength + CHECKSUM_SIZE);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, text.byteLength, true);
  view.setBigUint64(16, BigInt(payload.byteLength), true);
  out.set(text, BASE);
  out.set(payload, BASE + text.byteLength);
  out.set(await sha256Bytes(out.subarray(0, bodyLength)), bodyLength);
  return out;
}
