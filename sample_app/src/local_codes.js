// Compact local maps, as pocketvec.runtime.content_box, local_codebook and gallery/coded: a row keeps its item's
// content box (top, left, rows, columns in map locations) and, for each box location with row + column even
// (row-major), the codes of the model's codebook (OPQ: rotate, then the nearest of 256 centroids per piece).
// Decoding looks the centroids up, rotates back and renormalises, in float64 as Python does.

export const BOX_BYTES = 4;
const CENTROIDS = 256;

function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** base64 of little-endian float16 values -> Float64Array of length n, or null when the size is not n. */
function halves(text, n) {
  if (typeof text !== "string") return null;
  const raw = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (raw.byteLength !== n * 2) return null;
  const view = new DataView(raw.buffer), out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  return out;
}

/** The metadata's local_rerank.codebook ({subvectors, width, digest, rotation, centroids: base64}) -> arrays,
 * or null when it is not a valid codebook for `channels`-channel locations. */
export function parseCodebook(data, channels) {
  const m = data?.subvectors, width = data?.width;
  if (!Number.isInteger(m) || !Number.isInteger(width) || m < 1 || m > 255 || width < channels || width % m
    || !/^sha256:[0-9a-f]{64}$/.test(data.digest ?? "")) return null;
  const rotation = halves(data.rotation, channels * width), centroids = halves(data.centroids, m * CENTROIDS * (width / m));
  if (!rotation || !centroids) return null;
  return { digest: data.digest, subvectors: m, width, channels, step: width / m, rotation, centroids };
}

/** [top, left, rows, columns] of the map locations that hold some of a height x width item (scale_fit
 * letterboxes it; the other crops fill the input). */
export function contentBox(height, width, preprocess, locations) {
  const side = Math.round(Math.sqrt(locations));
  if (preprocess.crop_mode !== "scale_fit") return [0, 0, side, side];
  const size = preprocess.input_size, ratio = size / Math.max(height, width);
  const newW = Math.max(1, Math.min(size, Math.floor(width * ratio + 0.5)));
  const newH = Math.max(1, Math.min(size, Math.floor(height * ratio + 0.5)));
  const top = Math.floor((size - newH) / 2), left = Math.floor((size - newW) / 2), cell = size / side;
  const kept = (start, extent) => [...Array(side).keys()].filter((i) => i * cell + cell > start && i * cell < start + extent);
  const rows = kept(top, newH), cols = kept(left, newW);
  return [rows[0], cols[0], rows.length, cols.length];
}

/** Locations a box keeps: ceil(rows x cols / 2) when its corner is even, else floor. */
export const checkerCount = ([top, left, rows, cols]) => Math.floor((rows * cols + ((top + left) % 2 === 0 ? 1 : 0)) / 2);

/** The kept locations of a box, as indices into the side x side map, row-major. */
export function checkerLocations([top, left, rows, cols], side) {
  const out = [];
  for (let r = top; r < top + rows; r++) for (let c = left; c < left + cols; c++) if ((r + c) % 2 === 0) out.push(r * side + c);
  return out;
}

/** A full map (locations x channels) and its box -> Uint8Array of the kept locations' codes. */
export function encodeRow(local, box, codebook) {
  const { channels, width, step, subvectors: m, rotation, centroids } = codebook;
  const kept = checkerLocations(box, Math.round(Math.sqrt(local.length / channels)));
  const codes = new Uint8Array(kept.length * m), rotated = new Float64Array(width);
  kept.forEach((location, k) => {
    rotated.fill(0);
    for (let c = 0; c < channels; c++) {
      const x = local[location * channels + c];
      for (let w = 0; w < width; w++) rotated[w] += x * rotation[c * width + w];
    }
    for (let j = 0; j < m; j++) {
      let best = Infinity, bestIndex = 0;
      for (let i = 0; i < CENTROIDS; i++) {
        let d = 0;
        for (let s = 0; s < step; s++) {
          const cv = centroids[(j * CENTROIDS + i) * step + s];
          d += cv * cv - 2 * rotated[j * step + s] * cv; // the piece's own norm is the same for every centroid
        }
        if (d < best) { best = d; bestIndex = i; }
      }
      codes[k * m + j] = bestIndex;
    }
  });
  return codes;
}

/** One row's codes (kept locations x subvectors) -> Float32Array (kept locations x channels) of unit vectors. */
export function decodeRow(codes, codebook) {
  const { channels, width, step, subvectors: m, rotation, centroids } = codebook;
  const n = codes.length / m, out = new Float32Array(n * channels), piece = new Float64Array(width), x = new Float64Array(channels);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < m; j++) {
      const at = (j * CENTROIDS + codes[k * m + j]) * step;
      for (let s = 0; s < step; s++) piece[j * step + s] = centroids[at + s];
    }
    let norm = 0;
    for (let c = 0; c < channels; c++) {
      let v = 0;
      for (let w = 0; w < width; w++) v += piece[w] * rotation[c * width + w];
      x[c] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm) || 1;
    for (let c = 0; c < channels; c++) out[k * channels + c] = x[c] / norm;
  }
  return out;
}
