// Zoom to the item, as pocketvec.runtime.item_zoom: where a photo's item lies, from the first pass's local map and
// a candidate row's. A row location and a photo location that are each other's best cosine form a correspondence;
// an affine map from the row's map grid to the photo's is fitted by RANSAC over the triples of the 16 strongest
// correspondences (in itertools.combinations order, so the same triple wins on every platform), refitted by least
// squares on the ones that agree; the item's corners, so mapped, bound its pixel region. Float64 throughout.
// Maps are flat Float32Arrays (locations x channels, row-major); points are [x, y] in map units.

export const STRONGEST = 16; // the correspondences whose triples are tried: C(16, 3) = 560 hypotheses
export const MIN_SIDE = 16; // pixels: a smaller region is no zoom
export const ITEM_ZOOM = Object.freeze({ inliers: 8, tolerance: 1.0 }); // ItemZoom's defaults
// Kept between each decision and its bound (an error and the tolerance, a box edge and a whole pixel), as Python
// does: fits are often exact, and numpy's last bits and these differ.
const SLACK = 1e-9;
const MAX_ASPECT = 20; // as pocketvec.runtime.images: long side / short side
const MAX_SCALED_PIXELS = 16 * 1024 * 1024; // as pocketvec.runtime.image_bounds

/** The (x, y) centre of map location `i` of a side x side grid, in map units. */
const centre = (i, side) => [(i % side) + 0.5, Math.floor(i / side) + 0.5];

/** Solve A X = B for a 3x3 A (row-major, 9 values) and B 3 x `cols` (row-major): Gaussian elimination with
 * partial pivoting (LU as LAPACK's getrf: the pivot's reciprocal scales the column), then the substitutions.
 * Returns {x, det}; x is null when |det| < 1e-9 (a degenerate triple). */
export function solve3(a, b, cols) {
  const m = Float64Array.from(a), x = Float64Array.from(b);
  let det = 1;
  for (let k = 0; k < 3; k++) {
    let p = k;
    for (let i = k + 1; i < 3; i++) if (Math.abs(m[i * 3 + k]) > Math.abs(m[p * 3 + k])) p = i;
    if (p !== k) {
      det = -det;
      for (let j = 0; j < 3; j++) [m[k * 3 + j], m[p * 3 + j]] = [m[p * 3 + j], m[k * 3 + j]];
      for (let j = 0; j < cols; j++) [x[k * cols + j], x[p * cols + j]] = [x[p * cols + j], x[k * cols + j]];
    }
    const pivot = m[k * 3 + k];
    det *= pivot;
    if (pivot === 0) continue;
    const inverse = 1 / pivot;
    for (let i = k + 1; i < 3; i++) {
      const l = m[i * 3 + k] * inverse;
      m[i * 3 + k] = l;
      for (let j = k + 1; j < 3; j++) m[i * 3 + j] -= l * m[k * 3 + j];
    }
  }
  if (!(Math.abs(det) >= 1e-9)) return { x: null, det };
  for (let j = 0; j < cols; j++) {
    for (let i = 1; i < 3; i++) for (let k = 0; k < i; k++) x[i * cols + j] -= m[i * 3 + k] * x[k * cols + j];
    for (let i = 2; i >= 0; i--) {
      for (let k = i + 1; k < 3; k++) x[i * cols + j] -= m[i * 3 + k] * x[k * cols + j];
      x[i * cols + j] /= m[i * 3 + i];
    }
  }
  return { x, det };
}

/** [x y 1] @ M for an affine map M (3 x 2, row-major). */
const applyAffine = (m, [x, y]) => [x * m[0] + y * m[2] + m[4], x * m[1] + y * m[3] + m[5]];

/** The affine map (3 x 2) that fits `src` to `dst` best in least squares: the normal equations, solved by solve3. */
function leastSquares(src, dst) {
  const ata = new Float64Array(9), atb = new Float64Array(6);
  src.forEach(([x, y], n) => {
    const row = [x, y, 1];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) ata[i * 3 + j] += row[i] * row[j];
      atb[i * 2] += row[i] * dst[n][0];
      atb[i * 2 + 1] += row[i] * dst[n][1];
    }
  });
  return solve3(ata, atb, 2).x;
}

/** The item's `corners` (4 points, in the row's map units) mapped into the photo's map units, or null when fewer
 * than `zoom.inliers` mutual best matches agree. `photoMap`: side x side locations of `channels`; `rowMap`: the
 * locations `rowLocations` (indices into the same grid; null: every location); unit rows. */
export function fitItemCorners(photoMap, rowMap, corners, channels, zoom = ITEM_ZOOM, rowLocations = null) {
  const photoCount = photoMap.length / channels, rowCount = rowMap.length / channels;
  const side = Math.round(Math.sqrt(photoCount));
  const photo = Float64Array.from(photoMap), cosines = new Float64Array(rowCount * photoCount); // (row, photo)
  const toPhoto = new Int32Array(rowCount), toRow = new Int32Array(photoCount);
  for (let r = 0; r < rowCount; r++) {
    const row = Float64Array.from(rowMap.subarray(r * channels, (r + 1) * channels));
    for (let p = 0, at = 0; p < photoCount; p++, at += channels) {
      let dot = 0;
      for (let c = 0; c < channels; c++) dot += row[c] * photo[at + c];
      cosines[r * photoCount + p] = dot;
      if (dot > cosines[r * photoCount + toPhoto[r]]) toPhoto[r] = p; // argmax: the first of the best
    }
  }
  for (let p = 0; p < photoCount; p++) {
    for (let r = 1; r < rowCount; r++) if (cosines[r * photoCount + p] > cosines[toRow[p] * photoCount + p]) toRow[p] = r;
  }
  const xs = corners.map((c) => c[0]), ys = corners.map((c) => c[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const rowCentre = (r) => centre(rowLocations ? rowLocations[r] : r, side);
  const mutual = [];
  for (let r = 0; r < rowCount; r++) {
    const [x, y] = rowCentre(r);
    if (toRow[toPhoto[r]] === r && x > x0 && x < x1 && y > y0 && y < y1) mutual.push(r);
  }
  if (mutual.length < zoom.inliers) return null;
  const strength = (r) => cosines[r * photoCount + toPhoto[r]];
  mutual.sort((a, b) => strength(b) - strength(a)); // stable: ties keep the row order
  const src = mutual.map(rowCentre), dst = mutual.map((r) => centre(toPhoto[r], side));
  const strongest = Math.min(STRONGEST, mutual.length);
  let best = null, bestCount = 0;
  for (let i = 0; i < strongest; i++) {
    for (let j = i + 1; j < strongest; j++) {
      for (let k = j + 1; k < strongest; k++) {
        const a = [i, j, k].flatMap((t) => [src[t][0], src[t][1], 1]), b = [i, j, k].flatMap((t) => dst[t]);
        const map = solve3(a, b, 2).x;
        if (!map) continue; // a degenerate (collinear) triple agrees with nothing
        const agreed = src.map((s, n) => {
          const [x, y] = applyAffine(map, s), dx = x - dst[n][0], dy = y - dst[n][1];
          return Math.sqrt(dx * dx + dy * dy) < zoom.tolerance - SLACK;
        });
        const count = agreed.filter(Boolean).length;
        if (count > bestCount) [best, bestCount] = [agreed, count]; // the first of the most agreed
      }
    }
  }
  if (bestCount < zoom.inliers) return null;
  const fitted = leastSquares(src.filter((_, n) => best[n]), dst.filter((_, n) => best[n]));
  return fitted && corners.map((c) => applyAffine(fitted, c));
}

/** Points in the map units of a photo (height x width) cropped with `crop` -> photo pixels. */
export function photoGridToPixels(points, side, crop, height, width) {
  if (crop === "scale_fill") return points.map(([x, y]) => [x * (width / side), y * (height / side)]);
  if (crop === "center_crop") {
    const short = Math.min(height, width);
    return points.map(([x, y]) => [x * (short / side) + (width - short) / 2, y * (short / side) + (height - short) / 2]);
  }
  const long = Math.max(height, width); // scale_fit: the photo letterboxed into the square
  return points.map(([x, y]) => [x * (long / side) - (long - width) / 2, y * (long / side) - (long - height) / 2]);
}

/** The photo's pixel region [top, left, bottom, right] (end exclusive) holding the item, from the first candidate
 * ({map, locations, corners}, best first) whose map gives one; null when none does or the region is under
 * MIN_SIDE. `photoMap`: the first crop's side x side locations. */
export function itemRegion(photoMap, candidates, channels, photoCrop, height, width, zoom = ITEM_ZOOM) {
  const side = Math.round(Math.sqrt(photoMap.length / channels));
  for (const row of candidates) {
    const mapped = fitItemCorners(photoMap, row.map, row.corners, channels, zoom, row.locations);
    if (!mapped) continue;
    const pixels = photoGridToPixels(mapped, side, photoCrop, height, width);
    const xs = pixels.map((p) => p[0]), ys = pixels.map((p) => p[1]);
    const box = [Math.max(0, Math.floor(Math.min(...ys) + SLACK)), Math.max(0, Math.floor(Math.min(...xs) + SLACK)),
      Math.min(height, Math.ceil(Math.max(...ys) - SLACK)), Math.min(width, Math.ceil(Math.max(...xs) - SLACK))];
    return box[2] - box[0] < MIN_SIDE || box[3] - box[1] < MIN_SIDE ? null : box;
  }
  return null;
}

const rectangle = ([lx, ly], [hx, hy]) => [[lx, ly], [hx, ly], [hx, hy], [lx, hy]];

/** The corners of an item that fills its map (a full row: its whole side x side grid). */
export const itemCorners = (side) => rectangle([0, 0], [side, side]);

/** The corners of a content box [top, left, rows, columns] (a compact row's), in map locations. */
export const boxCorners = ([top, left, rows, cols]) => rectangle([left, top], [left + cols, top + rows]);

/** Whether the model takes a region height x width under each of its photo crops (as image_bounds.check_bounds:
 * the aspect ratio, and the pixels a centre crop scales it to); else the photo keeps its first pass. */
export function takesRegion(height, width, crops, inputSize) {
  if (height < 1 || width < 1 || Math.max(height, width) / Math.min(height, width) > MAX_ASPECT) return false;
  const scaled = (crop) => (crop === "center_crop" ? inputSize * inputSize * Math.max(width, height) / Math.min(width, height)
    : inputSize * inputSize);
  return crops.every((crop) => scaled(crop) <= MAX_SCALED_PIXELS);
}

/** The pixels [top, left, bottom, right) of an RGB image {width, height, data}. */
export function cropImage(img, [top, left, bottom, right]) {
  const width = right - left, height = bottom - top, data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * img.width + left) * 3;
    data.set(img.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, data };
}
