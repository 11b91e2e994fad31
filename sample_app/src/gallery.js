// The on-device gallery: labelled unit embeddings tied to one model's embedding space, and the
// matcher (label-level top-k, accept / unknown), the same rule as the Python runtime; for a model
// with a local re-rank, each row keeps its local map and the best labels are re-ranked by it
// (pocketvec.runtime.local_rerank). A compact gallery's rows keep their content box and its checkerboard's
// codes (local_codes.js), decoded once: each row is scored over its own locations.

import { decodeGallery, encodeGallery, GalleryFileError, toHalfPrecision } from "./gallery_file.js";
import { BOX_BYTES, checkerCount, decodeRow, encodeRow } from "./local_codes.js";


// As pocketvec.runtime.matcher: the rule used when neither the gallery nor the model carries one.
export const DEFAULT_RULE = Object.freeze({ threshold: 0.5, margin: 0.0, method: "default" });

/** Every score, threshold and margin the page shows: 3 decimals. */
export const score3 = (x) => Number(x).toFixed(3);

/** Accept the best label when best >= threshold and best - best other label >= margin. */
export function decide(top, rule = DEFAULT_RULE) {
  if (top.length === 0) return { accepted: false, reason: "empty gallery" };
  const best = top[0].score, other = top.length > 1 ? top[1].score : -Infinity;
  if (best < rule.threshold) return { accepted: false, reason: `best ${score3(best)} < threshold ${score3(rule.threshold)}` };
  if (best - other < rule.margin) {
    return { accepted: false, reason: `margin ${score3(best - other)} < ${score3(rule.margin)}` };
  }
  return { accepted: true, reason: `best ≥ ${score3(rule.threshold)}, margin ≥ ${score3(rule.margin)}` };
}

/** The answer from label-level scores (best first): the top k and the accept rule's decision. */
export function answer(all, k = 3, rule = DEFAULT_RULE) {
  const decision = decide(all, rule);
  return { top: all.slice(0, k), ...decision, label: decision.accepted ? all[0].label : null };
}

/** Each candidate row's local score for the photo's map `query`, as pocketvec.runtime.local_rerank:
 * (1 - photo_weight) x found + photo_weight x explained. found: the mean over the row's locations of each
 * one's best cosine with a photo location, averaged with the mean of its worst worst_fraction; explained:
 * the mean over the photo's item locations (matched above photo_threshold by some candidate) of each
 * one's best cosine with a row location. Maps are locations x channels, row-major. */
export function localSimilarities(query, rows, channels, settings) {
  const { worst_fraction: worstFraction, photo_weight: photoWeight, photo_threshold: photoThreshold } = settings;
  const m = query.length / channels;
  query = Float64Array.from(query); // one conversion, not one per product
  const inRow = rows.map((row) => {
    const n = row.length / channels, bestInPhoto = new Float64Array(n), bestInRow = new Float64Array(m).fill(-Infinity);
    for (let i = 0; i < n; i++) {
      const r = Float64Array.from(row.subarray(i * channels, (i + 1) * channels));
      let best = -Infinity;
      for (let j = 0, q = 0; j < m; j++, q += channels) {
        let dot = 0;
        for (let c = 0; c < channels; c++) dot += r[c] * query[q + c];
        if (dot > best) best = dot;
        if (dot > bestInRow[j]) bestInRow[j] = dot;
      }
      bestInPhoto[i] = best;
    }
    let found = bestInPhoto.reduce((a, b) => a + b, 0) / n;
    if (worstFraction > 0) {
      const worst = Math.max(1, Math.floor(worstFraction * n));
      found = 0.5 * (found + bestInPhoto.slice().sort().subarray(0, worst).reduce((a, b) => a + b, 0) / worst);
    }
    return { found, bestInRow };
  });
  if (photoWeight === 0) return inRow.map((r) => r.found);
  const onItem = Array.from({ length: m }, (_, j) => Math.max(...inRow.map((r) => r.bestInRow[j])) > photoThreshold);
  const count = onItem.filter(Boolean).length;
  return inRow.map(({ found, bestInRow }) => {
    const explained = count ? bestInRow.reduce((a, v, j) => a + (onItem[j] ? v : 0), 0) / count : 0;
    return (1 - photoWeight) * found + photoWeight * explained;
  });
}

/** The model's local shape [locations, channels], or null without a local re-rank. */
export const localShapeOf = (meta) => (meta?.local_rerank ? [meta.local_rerank.locations, meta.local_rerank.channels] : null);

export class Gallery {
  /** `rerank`: the model's local_rerank metadata as model.js parseMetadata returns it (top_k, weight,
   * locations, channels, and the score's worst_fraction, photo_weight, photo_threshold), or null. */
  constructor(spaceId, dim, acceptRule = null, rerank = null) {
    this.spaceId = spaceId;
    this.dim = dim;
    this.acceptRule = acceptRule;
    this.rerank = rerank;
    // {label, source, embedding: Float32Array, local?: Float32Array, box?: [4], codes?: Uint8Array, thumb?: data URL}
    this.rows = [];
    this.codes = null; // compact local maps: {digest, subvectors} of the codebook that coded them (a file's local_codes)
    this.seededFrom = null; // checksum of the served gallery file this one started from
    this.modelDigest = null; // the weights digest of the model that built the rows (a file's model_digest), or null
    this.textReader = null; // the OCR models that read the rows' printed text (a file's text_reader), or null
  }

  get localShape() {
    return localShapeOf({ local_rerank: this.rerank });
  }

  get count() {
    return this.rows.length;
  }

  /** The rows of each label, labels sorted. */
  labelRows() {
    const rows = new Map();
    for (const r of this.rows) rows.set(r.label, [...(rows.get(r.label) || []), r]);
    return new Map([...rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Enroll one row (with its local map, kept at float16 as the file stores it, when the model re-ranks, or in
   * a compact gallery coded over its content `box` (local_codes.js contentBox); with its printed text, read from
   * the image, when the gallery keeps texts); the same image (sha256) twice is refused with the reason. */
  add(label, source, embedding, thumb = null, local = null, text = null, box = null) {
    label = (label || "").trim();
    if (!label) throw new GalleryFileError("enroll: the label is empty");
    if (this.textReader && typeof text !== "string") {
      throw new GalleryFileError("enroll: this gallery keeps each item's printed text (text verification): the row "
        + "needs its text, read with the OCR models");
    }
    if (!this.textReader && text !== null) throw new GalleryFileError("enroll: this gallery keeps no printed text");
    if (embedding.length !== this.dim) throw new GalleryFileError(`enroll: embedding has ${embedding.length} values, the model makes ${this.dim}`);
    const shape = this.localShape;
    if (shape && local?.length !== shape[0] * shape[1]) {
      throw new GalleryFileError(`enroll: the model re-ranks by local maps of ${shape[0]} x ${shape[1]}; got ${local ? local.length : "no"} values`);
    }
    const known = this.rows.find((r) => r.source === source);
    if (known) {
      return { added: false, reason: known.label === label ? `already enrolled as "${label}"` : `the same image is already enrolled as "${known.label}"` };
    }
    let maps = shape ? { local: toHalfPrecision(local) } : {};
    if (this.codes) {
      if (box?.length !== BOX_BYTES) throw new GalleryFileError("enroll: a compact gallery needs the item's content box");
      const codes = encodeRow(local, box, this.rerank.codebook);
      maps = { box: Array.from(box), codes, local: decodeRow(codes, this.rerank.codebook) };
    }
    const row = { label, source, embedding: Float32Array.from(embedding), ...maps,
      ...(thumb ? { thumb } : {}), ...(this.textReader ? { text } : {}) };
    this.rows.push(row);
    return { added: true, row };
  }

  removeLabel(label) {
    const before = this.rows.length;
    this.rows = this.rows.filter((r) => r.label !== label);
    return before - this.rows.length;
  }

  /** Label-level scores (best row per label), best first; ties broken by label, as Python. With a local
   * re-rank (`local`: the photo's map): the top_k labels only, each re-scored by its best row's local map. */
  scores(query, local = null) {
    const byLabel = (a, b) => b.score - a.score || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
    const all = this.rerank ? this.reranked(query, local) : this.bestRows(query);
    return all.sort(byLabel).map(({ label, score }) => ({ label, score }));
  }

  /** The re-rank's candidates (the top_k labels' best rows, re-scored by their maps), best first (ties: the
   * earlier row), as pocketvec.runtime.matcher's candidate_rows: the rows whose maps locate the item
   * (zoomed_photo.js). */
  candidateRows(query, local) {
    return this.reranked(query, local).sort((a, b) => b.score - a.score || a.index - b.index).map((t) => this.rows[t.index]);
  }

  /** Each label's best row by cosine: {label, score, index}, in the order the labels first appear. */
  bestRows(query) {
    const best = new Map();
    this.rows.forEach((r, index) => {
      let dot = 0;
      for (let i = 0; i < this.dim; i++) dot += r.embedding[i] * query[i];
      if (!best.has(r.label) || dot > best.get(r.label).score) best.set(r.label, { score: dot, index });
    });
    return [...best].map(([label, { score, index }]) => ({ label, score, index }));
  }

  /** As pocketvec.runtime.local_rerank: the top_k labels by their best row (ties: the earlier row), each
   * re-scored by that row's local map and the photo's ({label, score, index}, unordered). */
  reranked(query, local) {
    if (!local) throw new GalleryFileError("the model re-ranks by local maps: the photo's map is missing");
    const top = this.bestRows(query).sort((a, b) => b.score - a.score || a.index - b.index).slice(0, this.rerank.top_k);
    const locals = localSimilarities(local, top.map((t) => this.rows[t.index].local), this.rerank.channels, this.rerank);
    const most = Math.max(...locals);
    return top.map((t, i) => ({ ...t, score: t.score - this.rerank.weight * (most - locals[i]) }));
  }

  match(query, k = 3, rule = this.acceptRule, local = null) {
    return answer(this.scores(query, local), k, rule);
  }

  /** A .pvg file's bytes (float32 or int8 rows); `version` is the model's pocketvec version, `modelDigest` the
   * weights digest it records (the app's: its model's). */
  async toFile(dtype = "float32", version = "0.1.0", modelDigest = this.modelDigest) {
    const vectors = new Float32Array(this.count * this.dim);
    this.rows.forEach((r, i) => vectors.set(r.embedding, i * this.dim));
    const header = {
      embedding_space_id: this.spaceId, dim: this.dim, count: this.count, dtype,
      labels: this.rows.map((r) => r.label), sources: this.rows.map((r) => r.source),
      accept_rule: this.acceptRule, created_by: `pocketvec ${version} (sample app)`,
      ...(modelDigest ? { model_digest: modelDigest } : {}),
      ...(this.textReader ? { texts: this.rows.map((r) => r.text), text_reader: this.textReader } : {}),
    };
    const shape = this.localShape;
    if (!shape) return encodeGallery(header, vectors);
    if (this.codes) {
      const boxes = Uint8Array.from(this.rows.flatMap((r) => r.box)), codes = new Uint8Array(this.rows.reduce((n, r) => n + r.codes.length, 0));
      this.rows.reduce((at, r) => (codes.set(r.codes, at), at + r.codes.length), 0);
      const coded = codes.length / this.codes.subvectors;
      return encodeGallery({ ...header, local_shape: shape, local_codes: this.codes, coded_locations: coded }, vectors, null, { boxes, codes });
    }
    const size = shape[0] * shape[1], locals = new Float32Array(this.count * size);
    this.rows.forEach((r, i) => locals.set(r.local, i * size));
    return encodeGallery({ ...header, local_shape: shape }, vectors, locals);
  }

  /** Read a .pvg; a gallery made by another model (embedding space, dim, or local maps: `rerank` is that
   * model's local_rerank metadata, null without one) is refused. Without `spaceId`, the file's own local
   * maps decide and `rerank` (if given) supplies top_k, weight and the score's settings. One built by another
   * export of the same run (its model_digest is not `digest`, the model's weights_digest) is used, with one
   * console line, as pocketvec.runtime.enroll.open_gallery. */
  static async fromFile(buffer, source, spaceId, dim, rerank = undefined, digest = undefined) {
    const { header, vectors, locals, coded, checksum } = await decodeGallery(buffer, source);
    if (spaceId !== undefined && header.embedding_space_id !== spaceId) {
      throw new GalleryFileError(`${source} was made by another model (embedding space ${header.embedding_space_id}, `
        + `this model is ${spaceId}); rebuild it with this model`);
    }
    if (dim !== undefined && header.dim !== dim) {
      throw new GalleryFileError(`${source}: gallery rows have ${header.dim} values, the model makes ${dim}; rebuild it with this model`);
    }
    const fileShape = header.local_shape || null, modelShape = rerank === undefined ? fileShape : localShapeOf({ local_rerank: rerank });
    if (String(fileShape) !== String(modelShape)) {
      const has = fileShape ? `local maps of ${fileShape.join(" x ")}` : "no local maps";
      const wants = modelShape ? `local maps of ${modelShape.join(" x ")} (local re-rank)` : "none (no local re-rank)";
      throw new GalleryFileError(`${source} holds ${has}, the model makes ${wants}; rebuild it with this model`);
    }
    const settings = fileShape ? { ...(rerank || {}), locations: fileShape[0], channels: fileShape[1] } : null;
    const codebook = rerank?.codebook ?? null;
    if (coded && codebook?.digest !== header.local_codes.digest) {
      const short = (d) => d.slice(0, 19);
      throw new GalleryFileError(`${source} codes its local maps with codebook ${short(header.local_codes.digest)}; this model `
        + `${codebook ? `has codebook ${short(codebook.digest)}` : "carries no local codebook"}; rebuild the gallery with this model`);
    }
    const gallery = new Gallery(header.embedding_space_id, header.dim, header.accept_rule, settings);
    gallery.codes = coded ? header.local_codes : null;
    gallery.modelDigest = header.model_digest ?? null;
    gallery.textReader = header.text_reader ?? null;
    if (digest && gallery.modelDigest && digest !== gallery.modelDigest) {
      const short = (d) => d.slice(0, 19);
      console.warn(`${source} was built by another export of this model (weights ${short(gallery.modelDigest)}, `
        + `this model's ${short(digest)}): same embedding space, so it is used as it is`);
    }
    const size = fileShape ? fileShape[0] * fileShape[1] : 0;
    let at = 0; // a compact row's first code byte
    const maps = (i) => {
      if (!coded) return fileShape ? { local: locals.subarray(i * size, (i + 1) * size) } : {};
      const box = Array.from(coded.boxes.subarray(i * BOX_BYTES, (i + 1) * BOX_BYTES)), n = checkerCount(box) * gallery.codes.subvectors;
      const codes = coded.codes.slice(at, at += n);
      return { box, codes, local: decodeRow(codes, codebook) };
    };
    header.labels.forEach((label, i) => gallery.rows.push({
      label, source: header.sources[i], embedding: vectors.subarray(i * header.dim, (i + 1) * header.dim),
      ...maps(i),
      ...(header.texts ? { text: header.texts[i] } : {}),
    }));
    return { gallery, header, checksum };
  }
}
