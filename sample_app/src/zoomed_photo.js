// A photo embedded again from its item's region, as pocketvec.runtime.zoomed_photos: from the first pass's map
// (its first crop's block) and the re-rank's candidate rows, best first (item_zoom.js), the region is cropped
// from the decoded photo and embedded with the model's photo crops exactly as the first pass; matching then
// answers from this second pass.

import { boxCorners, cropImage, ITEM_ZOOM, itemCorners, itemRegion, takesRegion } from "./item_zoom.js";
import { checkerLocations } from "./local_codes.js";

/** The candidate rows' maps as the gallery scores them, with the item's corners: a compact row's kept locations
 * and its content box, a full row's whole map. */
function candidateMaps(gallery, rows, side) {
  return rows.map((row) => (gallery.codes
    ? { map: row.local, locations: checkerLocations(row.box, side), corners: boxCorners(row.box) }
    : { map: row.local, locations: null, corners: itemCorners(side) }));
}

/** The photo `img` (RGB, embedded by `model` as `first`: Model.embed's result with query) zoomed to its item:
 * {region: [top, left, bottom, right], out: the region's Model.embed result}, or null when the first pass
 * stands (no local re-rank, an empty gallery, no candidate locates the item, or a region the model cannot take). */
export async function zoomToItem(model, gallery, img, first, zoom = ITEM_ZOOM) {
  const rerank = model.meta.local_rerank;
  if (!zoom || !rerank || !first.local || gallery.count === 0) return null;
  const side = Math.round(Math.sqrt(rerank.locations)), channels = rerank.channels;
  const rows = gallery.candidateRows(first.embedding, first.local);
  const photoMap = first.local.subarray(0, side * side * channels);
  const region = itemRegion(photoMap, candidateMaps(gallery, rows, side), channels, model.photoCrops[0], img.height,
    img.width, zoom);
  if (!region) return null;
  const crop = cropImage(img, region);
  if (!takesRegion(crop.height, crop.width, model.photoCrops, model.spec.input_size)) return null;
  return { region, out: await model.embed(crop, true) };
}
