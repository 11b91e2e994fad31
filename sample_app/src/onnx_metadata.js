// Reads ModelProto.metadata_props (field 14: repeated {key = 1, value = 2}) straight from the
// .onnx bytes with a minimal protobuf walker, so the model file stays the source of truth.

function readVarint(view, pos) {
  let value = 0, shift = 0, byte;
  do {
    if (pos >= view.byteLength) throw new Error("truncated varint");
    byte = view.getUint8(pos++);
    value += (byte & 0x7f) * 2 ** shift; // no 32-bit overflow for lengths up to 2^53
    shift += 7;
  } while (byte & 0x80);
  return [value, pos];
}

/** Iterate (fieldNumber, wireType, start, end) over one message's bytes [start, end). */
function* fields(view, start, end) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = readVarint(view, pos);
    const field = Math.floor(key / 8), wire = key & 7;
    let valueStart = pos;
    if (wire === 0) [, pos] = readVarint(view, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len;
      [len, valueStart] = readVarint(view, pos);
      pos = valueStart + len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    if (pos > end) throw new Error("truncated protobuf field");
    yield [field, wire, valueStart, pos];
  }
}

/** All metadata_props of an ONNX model as a {key: value} object. */
export function readOnnxMetadata(buffer) {
  const view = new DataView(buffer), bytes = new Uint8Array(buffer), text = new TextDecoder();
  const props = {};
  for (const [field, wire, start, end] of fields(view, 0, buffer.byteLength)) {
    if (field !== 14 || wire !== 2) continue;
    let key = "", value = "";
    for (const [f, w, s, e] of fields(view, start, end)) {
      if (w !== 2) continue;
      if (f === 1) key = text.decode(bytes.subarray(s, e));
      if (f === 2) value = text.decode(bytes.subarray(s, e));
    }
    props[key] = value;
  }
  return props;
}
