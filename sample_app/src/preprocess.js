// Port of src/pocketvec/runtime/preprocess.py: PIL's separable resampling (antialiased when
// shrinking) in float64 with the same tap order and rounding, so the browser feeds the model
// exactly the pixels the Python runtime does. Images are {width, height, data: Uint8Array RGB}.

export const CROP_MODES = ["center_crop", "scale_fit", "scale_fill"];
export const RESAMPLE_FILTERS = { box: 0.5, bilinear: 1.0, bicubic: 2.0, lanczos: 3.0 }; // name -> support

const sinc = (x) => (x === 0 ? 1.0 : Math.sin(x * Math.PI) / (x * Math.PI));

function filterValue(name, x) {
  if (name === "box") return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; // PIL: asymmetric, ties go to one side
  if (name === "lanczos") return x >= -3.0 && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0; // PIL's, a = 3
  x = Math.abs(x);
  if (name === "bilinear") return x < 1.0 ? 1.0 - x : 0.0;
  const a = -0.5; // bicubic, as PIL
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

/** Per output pixel: `taps` source indices and normalised weights (flat arrays, out*taps). */
export function resampleWeights(inSize, outSize, resample) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = RESAMPLE_FILTERS[resample] * filterscale;
  const taps = Math.ceil(support) * 2 + 1;
  const inverse = 1.0 / filterscale; // PIL multiplies by 1/filterscale, in this order of operations
  const index = new Int32Array(outSize * taps);
  const weights = new Float64Array(outSize * taps);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    let total = 0.0;
    for (let t = 0; t < taps; t++) {
      const j = xmin + t;
      const w = j < xmax ? filterValue(resample, (t - center + xmin + 0.5) * inverse) : 0.0;
      weights[i * taps + t] = w;
      index[i * taps + t] = Math.min(j, inSize - 1);
      total = total + w; // sequential sum, as the Python side
    }
    for (let t = 0; t < taps; t++) {
      weights[i * taps + t] = total !== 0 ? weights[i * taps + t] / total : 0.0;
    }
  }
  return { index, weights, taps };
}

function roundU8(v) {
  const r = Math.floor(v + 0.5);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

function resizeHorizontal(img, width, resample) {
  const { index, weights, taps } = resampleWeights(img.width, width, resample);
  const out = new Uint8Array(img.height * width * 3);
  for (let y = 0; y < img.height; y++) {
    const row = y * img.width * 3;
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0.0;
        for (let t = 0; t < taps; t++) {
          acc = acc + img.data[row + index[x * taps + t] * 3 + c] * weights[x * taps + t];
        }
        out[(y * width + x) * 3 + c] = roundU8(acc);
      }
    }
  }
  return { width, height: img.height, data: out };
}

function resizeVertical(img, height, resample) {
  const { index, weights, taps } = resampleWeights(img.height, height, resample);
  const stride = img.width * 3;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    for (let k = 0; k < stride; k++) {
      let acc = 0.0;
      for (let t = 0; t < taps; t++) {
        acc = acc + img.data[index[y * taps + t] * stride + k] * weights[y * taps + t];
      }
      out[y * stride + k] = roundU8(acc);
    }
  }
  return { width: img.width, height, data: out };
}

/** Resize an RGB image: horizontal pass, round, vertical pass, round (a pass is skipped if equal). */
export function resize(img, width, height, resample = "bilinear") {
  if (!(resample in RESAMPLE_FILTERS)) {
    throw new Error(`resample must be one of ${Object.keys(RESAMPLE_FILTERS).sort()}. Got ${resample}.`);
  }
  let out = img;
  if (out.width !== width) out = resizeHorizontal(out, width, resample);
  if (out.height !== height) out = resizeVertical(out, height, resample);
  return out;
}

function roundHalfUp(v) {
  return Math.floor(v + 0.5);
}

/** Copy `src` into a size x size canvas of black at (left, top), cropping what falls outside. */
function place(src, size, left, top) {
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const sy = y - top;
    if (sy < 0 || sy >= src.height) continue;
    for (let x = 0; x < size; x++) {
      const sx = x - left;
      if (sx < 0 || sx >= src.width) continue;
      const s = (sy * src.width + sx) * 3, d = (y * size + x) * 3;
      out[d] = src.data[s]; out[d + 1] = src.data[s + 1]; out[d + 2] = src.data[s + 2];
    }
  }
  return { width: size, height: size, data: out };
}

/** An upright RGB image to the model's size x size RGB input (spec = metadata "preprocess"). */
export function preprocess(img, spec) {
  const size = spec.input_size;
  const { width: w, height: h } = img;
  if (!CROP_MODES.includes(spec.crop_mode)) {
    throw new Error(`crop_mode must be one of ${CROP_MODES}. Got ${spec.crop_mode}.`);
  }
  if (spec.crop_mode === "scale_fill") return resize(img, size, size, spec.resample);
  if (spec.crop_mode === "center_crop") {
    const ratio = size / Math.min(h, w);
    const newW = Math.max(size, roundHalfUp(w * ratio)), newH = Math.max(size, roundHalfUp(h * ratio));
    const scaled = resize(img, newW, newH, spec.resample);
    return place(scaled, size, -Math.floor((newW - size) / 2), -Math.floor((newH - size) / 2));
  }
  const ratio = size / Math.max(h, w); // scale_fit: letterbox on black
  const newW = Math.max(1, Math.min(size, roundHalfUp(w * ratio)));
  const newH = Math.max(1, Math.min(size, roundHalfUp(h * ratio)));
  const scaled = resize(img, newW, newH, spec.resample);
  return place(scaled, size, Math.floor((size - newW) / 2), Math.floor((size - newH) / 2));
}

/** Preprocessed RGB (HWC uint8) to the model's NCHW float32 0-255 input. */
export function toNCHW(img) {
  const plane = img.width * img.height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = img.data[i * 3];
    out[plane + i] = img.data[i * 3 + 1];
    out[2 * plane + i] = img.data[i * 3 + 2];
  }
  return out;
}
