// The `.pvg` header's schema, as pocketvec.runtime.gallery.header: every key checked by type and
// range, with the same messages, before anything uses it.

export class GalleryFileError extends Error {}

export const DTYPE_NAMES = ["float16", "float32", "int8"];
const KEYS_V2 = ["accept_rule", "count", "created_by", "dim", "dtype", "embedding_space_id", "labels", "sources"];
const KEYS_V1 = [...KEYS_V2, "payload_sha256"].sort();
const KEYS_V3 = [...KEYS_V2, "local_shape"].sort(); // version 2 + the rows' local maps
// version 4: local_shape optional; version 5: local maps full or compact (local_codes, coded_locations)
const KEYS = { 1: KEYS_V1, 2: KEYS_V2, 3: KEYS_V3, 4: KEYS_V2, 5: KEYS_V2 };
// the weights digest of the model that built the rows; the text printed on each row's image and what read it
const OPTIONAL_KEYS = ["model_digest", "texts", "text_reader"];
const OPTIONAL_V4 = [...OPTIONAL_KEYS, "local_shape"];
const OPTIONAL_V5 = [...OPTIONAL_V4, "local_codes", "coded_locations"];
const SEGMENT_KEYS = ["count", "labels", "sources"];
const MAX_TEXT = 2 ** 16; // characters of one row's text
const MAX_LOCATIONS = 4096, MAX_CHANNELS = 4096; // as pocketvec.runtime.local_rerank
const RULE_KEYS = ["margin", "method", "precision", "recall", "target_precision", "threshold"];
const MAX_COUNT = 2 ** 31, MAX_DIM = 65536, MAX_NAME = 256, MAX_LABEL = 1024;
export const MAX_DEPTH = 16;
const DIGEST = /^sha256:[0-9a-f]{64}$/; // as pocketvec.runtime.weights_digest

/** Whether `value` is a weights digest: "sha256:" and 64 lowercase hex digits. */
export const isDigest = (value) => typeof value === "string" && DIGEST.test(value);

const repr = (v) => JSON.stringify(v) ?? String(v);
const pyList = (names) => `[${names.map((n) => `'${n}'`).join(", ")}]`; // as Python prints a list of str

function checkNumber(name, value, low, high, integer = false) {
  const ok = typeof value === "number" && Number.isFinite(value) && (!integer || Number.isInteger(value))
    && value >= low && value <= high;
  if (!ok) throw new GalleryFileError(`${name} must be ${integer ? "an integer" : "a finite number"} in [${low}, ${high}]. Got ${repr(value)}.`);
}

function checkText(name, value, maxLength, empty = false) {
  if (typeof value !== "string") throw new GalleryFileError(`${name} must be a string. Got ${repr(value)}.`);
  if (value.length > maxLength) throw new GalleryFileError(`${name} must be at most ${maxLength} characters. Got ${value.length}.`);
  if (!empty && !value.trim()) throw new GalleryFileError(`${name} must not be empty. Got ${repr(value)}.`);
  if (!value.isWellFormed()) throw new GalleryFileError(`${name} is not valid Unicode text.`);
}

/** The deepest nesting of [ and { outside strings in JSON bytes (no recursion), as bounded_json. */
export function nestingDepth(bytes) {
  let depth = 0, deepest = 0, inString = false, escaped = false;
  for (const b of bytes) {
    if (inString) {
      if (escaped) escaped = false;
      else if (b === 0x5c) escaped = true;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (b === 0x5d || b === 0x7d) depth--;
  }
  return deepest;
}

function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkRule(rule) {
  if (!isObject(rule)) throw new GalleryFileError(`accept rule must be a JSON object. Got ${Array.isArray(rule) ? "list" : typeof rule}.`);
  const unknown = Object.keys(rule).filter((k) => !RULE_KEYS.includes(k)).sort();
  if (unknown.length) throw new GalleryFileError(`AcceptRule got unknown keys ${pyList(unknown)}. Valid keys: ${pyList(RULE_KEYS)}.`);
  if (!("threshold" in rule)) throw new GalleryFileError("accept rule lacks its threshold");
  checkNumber("accept rule threshold", rule.threshold, -2, 2);
  checkNumber("accept rule margin", rule.margin ?? 0, 0, 2);
  for (const name of ["precision", "recall", "target_precision"]) {
    if (rule[name] !== null && rule[name] !== undefined) checkNumber(`accept rule ${name}`, rule[name], 0, 1);
  }
  checkText("accept rule method", rule.method ?? "decision", MAX_NAME);
}

function checkValues(header) {
  if (typeof header.dtype !== "string" || !DTYPE_NAMES.includes(header.dtype)) {
    throw new GalleryFileError(`dtype must be one of ${pyList(DTYPE_NAMES)}. Got ${repr(header.dtype)}.`);
  }
  checkNumber("count", header.count, 0, MAX_COUNT, true);
  checkNumber("dim", header.dim, 1, MAX_DIM, true);
  checkText("embedding_space_id", header.embedding_space_id, MAX_NAME);
  checkText("created_by", header.created_by, MAX_NAME, true);
  if ("model_digest" in header && !isDigest(header.model_digest)) {
    throw new GalleryFileError(`model_digest must be 'sha256:' followed by 64 lowercase hex digits. Got ${repr(header.model_digest)}.`);
  }
  for (const key of ["labels", "sources"]) {
    const values = header[key];
    if (!Array.isArray(values) || values.length !== header.count) {
      throw new GalleryFileError(`'${key}' must be a list of ${header.count} strings`);
    }
    values.forEach((v, i) => checkText(`${key}[${i}]`, v, MAX_LABEL));
  }
  if ("local_shape" in header) {
    const shape = header.local_shape;
    if (!Array.isArray(shape) || shape.length !== 2) throw new GalleryFileError(`local_shape must be [locations, channels]. Got ${repr(shape)}.`);
    checkNumber("local_shape locations", shape[0], 1, MAX_LOCATIONS, true);
    checkNumber("local_shape channels", shape[1], 1, MAX_CHANNELS, true);
  }
  if (("local_codes" in header) !== ("coded_locations" in header) || ("local_codes" in header && !("local_shape" in header))) {
    throw new GalleryFileError("'local_codes' and 'coded_locations' come together, with 'local_shape'");
  }
  if ("local_codes" in header) {
    const codes = header.local_codes;
    if (!isObject(codes) || Object.keys(codes).sort().join() !== "digest,subvectors" || !isDigest(codes.digest)) {
      throw new GalleryFileError(`local_codes must be an object with ['digest', 'subvectors']. Got ${repr(codes)}.`);
    }
    checkNumber("local_codes subvectors", codes.subvectors, 1, 255, true);
    checkNumber("coded_locations", header.coded_locations, 0, 2 ** 40, true);
  }
  if (("texts" in header) !== ("text_reader" in header)) throw new GalleryFileError("'texts' and 'text_reader' come together");
  if ("texts" in header) {
    checkText("text_reader", header.text_reader, MAX_NAME);
    if (!Array.isArray(header.texts) || header.texts.length !== header.count) {
      throw new GalleryFileError(`'texts' must be a list of ${header.count} strings`);
    }
    header.texts.forEach((v, i) => checkText(`texts[${i}]`, v, MAX_TEXT, true));
  }
  if (new Set(header.sources).size !== header.count) {
    throw new GalleryFileError("two rows share a source image (sources must be unique)");
  }
  if (header.accept_rule !== null) checkRule(header.accept_rule);
}

/** Refuse a header that is not exactly the schema of `version`. */
export function checkHeader(header, source, version) {
  if (!isObject(header)) {
    throw new GalleryFileError(`${source}: gallery header must be a JSON object. Got ${Array.isArray(header) ? "list" : typeof header}.`);
  }
  const keys = KEYS[version], optional = version >= 5 ? OPTIONAL_V5 : version >= 4 ? OPTIONAL_V4 : OPTIONAL_KEYS;
  const missing = keys.filter((k) => !(k in header));
  const unknown = Object.keys(header).filter((k) => !keys.includes(k) && !optional.includes(k)).sort();
  if (missing.length) throw new GalleryFileError(`${source}: gallery header lacks keys ${pyList(missing)}`);
  if (unknown.length && version >= 2) throw new GalleryFileError(`${source}: gallery header has unknown keys ${pyList(unknown)}`);
  try {
    checkValues(header);
  } catch (e) {
    throw new GalleryFileError(`${source}: gallery header: ${e.message}`);
  }
}

/** An appended segment's header keys and list lengths (their values are checked with the whole gallery's
 * header), as pocketvec.runtime.gallery.segments.check_segment_header; `source` names the segment. */
export function checkSegmentHeader(header, base, source) {
  if (!isObject(header)) throw new GalleryFileError(`${source}: header must be a JSON object.`);
  const keys = [...SEGMENT_KEYS, ...("texts" in base ? ["texts"] : []), ...("local_codes" in base ? ["coded_locations"] : [])].sort();
  const missing = keys.filter((k) => !(k in header));
  const unknown = Object.keys(header).filter((k) => !keys.includes(k) && k !== "model_digest").sort();
  if (missing.length || unknown.length) {
    throw new GalleryFileError(`${source}: header lacks keys ${pyList(missing)} or has unknown keys ${pyList(unknown)}`);
  }
  try {
    checkNumber("count", header.count, 1, MAX_COUNT, true);
    if (keys.includes("coded_locations")) checkNumber("coded_locations", header.coded_locations, 0, 2 ** 40, true);
  } catch (e) {
    throw new GalleryFileError(`${source}: header: ${e.message}`);
  }
  for (const key of keys.filter((k) => k !== "count" && k !== "coded_locations")) {
    if (!Array.isArray(header[key]) || header[key].length !== header.count) {
      throw new GalleryFileError(`${source}: header: '${key}' must be a list of ${header.count} strings`);
    }
  }
}
