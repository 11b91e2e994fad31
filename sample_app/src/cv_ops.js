// The few OpenCV operations src/pocketvec/runtime/text_reader.py uses, ported for the browser: resize
// (INTER_LINEAR, OpenCV's fixed-point arithmetic for uint8), a 2x2 dilation, the regions findContours
// (RETR_LIST) traces, minAreaRect, the mean inside a box (fillPoly + mean), and the upright cut of a box
// (getPerspectiveTransform + warpPerspective, INTER_CUBIC, BORDER_REPLICATE). Images are
// {width, height, data: Uint8Array} with 3 interleaved channels.

const COEF_BITS = 11; // INTER_RESIZE_COEF_BITS
const COEF_SCALE = 1 << COEF_BITS;

/** cvRound: the nearest integer, halves to even. */
export function roundHalfEven(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Per output index: the first source index and the two fixed-point weights (INTER_LINEAR's taps). */
function linearTaps(inSize, outSize) {
  const scale = 1 / (outSize / inSize); // OpenCV: 1 / inv_scale
  const index = new Int32Array(outSize), weight = new Int32Array(outSize * 2);
  for (let d = 0; d < outSize; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (s < 0) { f = 0; s = 0; }
    if (s >= inSize - 1) { f = 0; s = inSize - 1; }
    index[d] = s;
    weight[2 * d] = roundHalfEven(Math.fround(1 - f) * COEF_SCALE);
    weight[2 * d + 1] = roundHalfEven(f * COEF_SCALE);
  }
  return { index, weight };
}

/** cv2.resize(img, (width, height), interpolation=INTER_LINEAR) for uint8: horizontal taps in fixed point,
 * then the vertical blend as OpenCV's vectorised path rounds it. */
export function resizeLinear(img, width, height) {
  const cn = 3, { index: xi, weight: xw } = linearTaps(img.width, width), { index: yi, weight: yw } = linearTaps(img.height, height);
  const rows = new Map(); // source row -> its horizontal pass (Int32Array)
  const horizontal = (sy) => {
    if (rows.has(sy)) return rows.get(sy);
    const out = new Int32Array(width * cn), base = sy * img.width * cn, last = img.width - 1;
    for (let x = 0; x < width; x++) {
      const s0 = base + xi[x] * cn, s1 = base + Math.min(xi[x] + 1, last) * cn;
      for (let c = 0; c < cn; c++) out[x * cn + c] = img.data[s0 + c] * xw[2 * x] + img.data[s1 + c] * xw[2 * x + 1];
    }
    rows.set(sy, out);
    return out;
  };
  const data = new Uint8Array(width * height * cn), last = img.height - 1;
  for (let y = 0; y < height; y++) {
    const r0 = horizontal(yi[y]), r1 = horizontal(Math.min(yi[y] + 1, last)), b0 = yw[2 * y], b1 = yw[2 * y + 1];
    for (let k = 0, o = y * width * cn; k < width * cn; k++) {
      const v = ((((r0[k] >> 4) * b0) >> 16) + (((r1[k] >> 4) * b1) >> 16) + 2) >> 2;
      data[o + k] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    if (y > 0 && yi[y] !== yi[y - 1]) rows.delete(yi[y - 1]); // rows only move down
  }
  return { width, height, data };
}

/** cv2.dilate(mask, ones((2, 2))): a pixel is set when it or its left, upper or upper-left neighbour is. */
export function dilate2x2(mask, width, height) {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      out[i] = mask[i] || (x > 0 && mask[i - 1]) || (y > 0 && mask[i - width]) || (x > 0 && y > 0 && mask[i - width - 1]) ? 1 : 0;
    }
  }
  return out;
}

/** The point sets whose hulls cv2.findContours(RETR_LIST) gives: each 8-connected region of set pixels, and
 * each hole in one (a 4-connected region of unset pixels not reaching the image's edge) as the set pixels
 * beside it. A region's hull is its outer contour's; the contour's simplification does not change a hull.
 * Each set is a flat [x0, y0, x1, y1, ...] list. */
export function regions(mask, width, height) {
  const label = new Int32Array(mask.length).fill(-1), out = [];
  const stack = new Int32Array(mask.length);
  const flood = (start, value, diagonal, visit) => {
    let top = 0;
    stack[top++] = start;
    label[start] = value;
    while (top) {
      const i = stack[--top], x = i % width, y = (i - x) / width;
      visit(i, x, y);
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          if ((!dx && !dy) || (!diagonal && dx && dy)) continue;
          const nx = x + dx, ny = y + dy, j = ny * width + nx;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height || label[j] !== -1 || !mask[j] !== !mask[start]) continue;
          label[j] = value;
          stack[top++] = j;
        }
      }
    }
  };
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i] || label[i] !== -1) continue;
    const points = [];
    flood(i, out.length, true, (_, x, y) => points.push(x, y));
    out.push(points);
  }
  for (let i = 0; i < mask.length; i++) { // holes: unset regions that do not reach the edge
    if (mask[i] || label[i] !== -1) continue;
    let edge = false;
    const inside = [];
    flood(i, -2, false, (j, x, y) => {
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) edge = true;
      inside.push(j);
    });
    if (edge) continue;
    const seen = new Set(), points = [];
    for (const j of inside) {
      for (const k of [j - 1, j + 1, j - width, j + width]) {
        if (mask[k] && !seen.has(k)) {
          seen.add(k);
          points.push(k % width, Math.floor(k / width));
        }
      }
    }
    out.push(points);
  }
  return out;
}

/** The convex hull of integer points [x0, y0, ...] (monotone chain), counter-clockwise, as [[x, y], ...]. */
function hull(flat) {
  const pts = [];
  for (let i = 0; i < flat.length; i += 2) pts.push([flat[i], flat[i + 1]]);
  pts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length < 3) return pts;
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower = [], upper = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

/** cv2.minAreaRect of integer points: {cx, cy, w, h, ux, uy} (u: the unit direction of the side w; the side h
 * lies along (-uy, ux)); w = h = 0 for fewer than two distinct points, h = 0 for collinear ones. */
export function minAreaRect(flat) {
  const p = hull(flat);
  if (p.length === 0) return { cx: 0, cy: 0, w: 0, h: 0, ux: 1, uy: 0 };
  if (p.length === 1) return { cx: p[0][0], cy: p[0][1], w: 0, h: 0, ux: 1, uy: 0 };
  let best = null;
  for (let i = 0; i < p.length; i++) {
    const a = p[i], b = p[(i + 1) % p.length], len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (len === 0) continue;
    const ux = (b[0] - a[0]) / len, uy = (b[1] - a[1]) / len;
    let u0 = Infinity, u1 = -Infinity, v0 = Infinity, v1 = -Infinity;
    for (const [x, y] of p) {
      const u = x * ux + y * uy, v = -x * uy + y * ux;
      u0 = Math.min(u0, u); u1 = Math.max(u1, u); v0 = Math.min(v0, v); v1 = Math.max(v1, v);
    }
    const area = (u1 - u0) * (v1 - v0);
    if (best === null || area < best.area) best = { area, ux, uy, u0, u1, v0, v1 };
  }
  const { ux, uy, u0, u1, v0, v1 } = best, cu = (u0 + u1) / 2, cv = (v0 + v1) / 2;
  const f = Math.fround;
  return { cx: f(cu * ux - cv * uy), cy: f(cu * uy + cv * ux), w: f(u1 - u0), h: f(v1 - v0), ux, uy };
}

/** The 4 corners of a rectangle {cx, cy, w, h, ux, uy} as [[x, y], ...] (cv2.boxPoints; any order). */
export function boxPoints({ cx, cy, w, h, ux, uy }) {
  const corners = [];
  for (const [su, sv] of [[-1, 1], [-1, -1], [1, -1], [1, 1]]) {
    const du = su * w / 2, dv = sv * h / 2;
    corners.push([Math.fround(cx + du * ux - dv * uy), Math.fround(cy + du * uy + dv * ux)]);
  }
  return corners;
}

/** Whether pixel (x, y) is inside or on the convex polygon `poly` (integer corners). */
function insideConvex(poly, x, y) {
  let sign = 0;
  for (let i = 0; i < poly.length; i++) {
    const [ax, ay] = poly[i], [bx, by] = poly[(i + 1) % poly.length];
    const c = (bx - ax) * (y - ay) - (by - ay) * (x - ax);
    if (c === 0) continue;
    if (sign === 0) sign = Math.sign(c); else if (Math.sign(c) !== sign) return false;
  }
  return true;
}

/** The mean of `map` (width x height floats) inside a box, as text_reader._mean_inside: the box's corners
 * truncated to whole pixels within its bounding rectangle, the polygon filled with its edges. */
export function meanInside(map, width, height, corners) {
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  const xs = corners.map((c) => c[0]), ys = corners.map((c) => c[1]);
  const x0 = clamp(Math.floor(Math.min(...xs)), width - 1), y0 = clamp(Math.floor(Math.min(...ys)), height - 1);
  const x1 = clamp(Math.ceil(Math.max(...xs)), width - 1), y1 = clamp(Math.ceil(Math.max(...ys)), height - 1);
  const poly = corners.map(([x, y]) => [Math.trunc(x - x0), Math.trunc(y - y0)]);
  let sum = 0, count = 0;
  for (let y = 0; y <= y1 - y0; y++) {
    for (let x = 0; x <= x1 - x0; x++) {
      if (!insideConvex(poly, x, y)) continue;
      sum += map[(y + y0) * width + x + x0];
      count++;
    }
  }
  return count ? sum / count : 0;
}

/** The homography (3 x 3, row-major) that maps each `from` point onto its `to` point (getPerspectiveTransform). */
export function perspective(from, to) {
  const a = [], b = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = from[i], [u, v] = to[i];
    a.push([x, y, 1, 0, 0, 0, -x * u, -y * u]); b.push(u);
    a.push([0, 0, 0, x, y, 1, -x * v, -y * v]); b.push(v);
  }
  for (let c = 0; c < 8; c++) { // Gaussian elimination with partial pivoting
    let pivot = c;
    for (let r = c + 1; r < 8; r++) if (Math.abs(a[r][c]) > Math.abs(a[pivot][c])) pivot = r;
    [a[c], a[pivot]] = [a[pivot], a[c]];
    [b[c], b[pivot]] = [b[pivot], b[c]];
    if (a[c][c] === 0) throw new Error("perspective: the corners are degenerate");
    for (let r = c + 1; r < 8; r++) {
      const f = a[r][c] / a[c][c];
      for (let k = c; k < 8; k++) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  const m = new Array(8);
  for (let r = 7; r >= 0; r--) {
    let s = b[r];
    for (let k = r + 1; k < 8; k++) s -= a[r][k] * m[k];
    m[r] = s / a[r][r];
  }
  return [...m, 1];
}

/** Bicubic weights (A = -0.75, OpenCV's) of the four taps around a source point at fraction `x`. */
function cubicWeights(x) {
  const A = -0.75;
  const c0 = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
  const c1 = ((A + 2) * x - (A + 3)) * x * x + 1;
  const c2 = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
  return [c0, c1, c2, 1 - c0 - c1 - c2];
}

/** cv2.warpPerspective(img, M, (width, height), flags=INTER_CUBIC, borderMode=BORDER_REPLICATE), where
 * `inverse` maps each output pixel to its source point (OpenCV inverts M to get it). The source point is kept
 * whole (float32), not snapped to 1/32 of a pixel, as the OpenCV of the Python runtime warps (measured). */
export function warpCubic(img, inverse, width, height) {
  const cn = 3, data = new Uint8Array(width * height * cn), [m0, m1, m2, m3, m4, m5, m6, m7, m8] = inverse;
  const clampX = (v) => (v < 0 ? 0 : v >= img.width ? img.width - 1 : v);
  const clampY = (v) => (v < 0 ? 0 : v >= img.height ? img.height - 1 : v);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const w = m6 * x + m7 * y + m8;
      const X = Math.fround((m0 * x + m1 * y + m2) / w), Y = Math.fround((m3 * x + m4 * y + m5) / w);
      const sx = Math.floor(X), sy = Math.floor(Y), wx = cubicWeights(X - sx), wy = cubicWeights(Y - sy);
      for (let c = 0; c < cn; c++) {
        let sum = 0;
        for (let k1 = 0; k1 < 4; k1++) {
          const row = clampY(sy - 1 + k1) * img.width;
          let across = 0;
          for (let k2 = 0; k2 < 4; k2++) across += img.data[(row + clampX(sx - 1 + k2)) * cn + c] * wx[k2];
          sum += across * wy[k1];
        }
        const v = Math.round(sum);
        data[(y * width + x) * cn + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { width, height, data };
}

/** np.rot90(img): a quarter turn counter-clockwise. */
export function rotate90(img) {
  const { width, height } = img, cn = 3, data = new Uint8Array(img.data.length);
  for (let i = 0; i < width; i++) {
    for (let j = 0; j < height; j++) {
      const s = (j * width + (width - 1 - i)) * cn, d = (i * height + j) * cn;
      data[d] = img.data[s]; data[d + 1] = img.data[s + 1]; data[d + 2] = img.data[s + 2];
    }
  }
  return { width: height, height: width, data };
}
