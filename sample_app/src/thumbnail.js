// A gallery row's picture: a small JPEG data URL made from the enrolled photo, kept with the row in
// IndexedDB. A .pvg file carries no image, so its rows have none (the list shows a placeholder).

import { toImageData } from "./decode.js";

export const THUMB_SIZE = 64; // longest side, CSS pixels

/** RGB image {width, height, data} -> "data:image/jpeg;base64,…" no larger than THUMB_SIZE. */
export function makeThumbnail(img, size = THUMB_SIZE) {
  const full = document.createElement("canvas");
  Object.assign(full, { width: img.width, height: img.height });
  full.getContext("2d").putImageData(toImageData(img), 0, 0);
  const scale = Math.min(1, size / Math.max(img.width, img.height));
  const small = document.createElement("canvas");
  Object.assign(small, { width: Math.max(1, Math.round(img.width * scale)), height: Math.max(1, Math.round(img.height * scale)) });
  const ctx = small.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(full, 0, 0, small.width, small.height);
  return small.toDataURL("image/jpeg", 0.85);
}

/** The list's picture of a label: its first row's thumbnail, or a placeholder saying why there is none. */
export function thumbnailElement(rows) {
  const thumb = rows.find((r) => r.thumb)?.thumb;
  if (thumb) return Object.assign(document.createElement("img"), { className: "thumb", src: thumb, alt: "" });
  return Object.assign(document.createElement("span"), {
    className: "thumb placeholder", textContent: "no image", title: "imported from a .pvg file, which holds no image",
  });
}

/** Keep the pictures of rows that are the same image (sha256 `source`) as a row of `before`. */
export function carryThumbnails(rows, before) {
  const bySource = new Map(before.filter((r) => r.thumb).map((r) => [r.source, r.thumb]));
  for (const r of rows) if (!r.thumb && bySource.has(r.source)) r.thumb = bySource.get(r.source);
}
