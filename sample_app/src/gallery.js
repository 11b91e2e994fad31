// The on-device gallery: labelled unit embeddings tied to one model's embedding space, and the
// matcher (label-level top-k, accept / unknown), the same rule as the Python runtime.

import { decodeGallery, encodeGallery, GalleryFileError } from "./gallery_file.js";


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

export class Gallery {
  constructor(spaceId, dim, acceptRule = null) {
    this.spaceId = spaceId;
    this.dim = dim;
    this.acceptRule = acceptRule;
    this.rows = []; // {label, source, embedding: Float32Array, thumb?: data URL (enrolled on the device)}
    this.seededFrom = null; // checksum of the served gallery file this one started from
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

  /** Enroll one row; the same image (sha256) twice is refused with the reason. */
  add(label, source, embedding, thumb = null) {
    label = (label || "").trim();
    if (!label) throw new GalleryFileError("enroll: the label is empty");
    if (embedding.length !== this.dim) throw new GalleryFileError(`enroll: embedding has ${embedding.length} values, the model makes ${this.dim}`);
    const known = this.rows.find((r) => r.source === source);
    if (known) {
      return { added: false, reason: known.label === label ? `already enrolled as "${label}"` : `the same image is already enrolled as "${known.label}"` };
    }
    const row = { label, source, embedding: Float32Array.from(embedding), ...(thumb ? { thumb } : {}) };
    this.rows.push(row);
    return { added: true, row };
  }

  removeLabel(label) {
    const before = this.rows.length;
    this.rows = this.rows.filter((r) => r.label !== label);
    return before - this.rows.length;
  }

  /** Label-level scores (best row per label), best first; ties broken by label, as Python. */
  scores(query) {
    const best = new Map();
    for (const r of this.rows) {
      let dot = 0;
      for (let i = 0; i < this.dim; i++) dot += r.embedding[i] * query[i];
      if (!best.has(r.label) || dot > best.get(r.label)) best.set(r.label, dot);
    }
    return [...best].map(([label, score]) => ({ label, score }))
      .sort((a, b) => b.score - a.score || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  }

  match(query, k = 3, rule = this.acceptRule) {
    const all = this.scores(query);
    const decision = decide(all, rule);
    return { top: all.slice(0, k), ...decision, label: decision.accepted ? all[0].label : null };
  }

  /** A .pvg file's bytes (float32 or int8 rows); `version` is the model's pocketvec version. */
  async toFile(dtype = "float32", version = "0.1.0") {
    const vectors = new Float32Array(this.count * this.dim);
    this.rows.forEach((r, i) => vectors.set(r.embedding, i * this.dim));
    const header = {
      embedding_space_id: this.spaceId, dim: this.dim, count: this.count, dtype,
      labels: this.rows.map((r) => r.label), sources: this.rows.map((r) => r.source),
      accept_rule: this.acceptRule, created_by: `pocketvec ${version} (sample app)`,
    };
    return encodeGallery(header, vectors);
  }

  /** Read a .pvg; a gallery made by another model (embedding space, or dim) is refused. */
  static async fromFile(buffer, source, spaceId, dim) {
    const { header, vectors, checksum } = await decodeGallery(buffer, source);
    if (spaceId !== undefined && header.embedding_space_id !== spaceId) {
      throw new GalleryFileError(`${source} was made by another model (embedding space ${header.embedding_space_id}, `
        + `this model is ${spaceId}); rebuild it with this model`);
    }
    if (dim !== undefined && header.dim !== dim) {
      throw new GalleryFileError(`${source}: gallery rows have ${header.dim} values, the model makes ${dim}; rebuild it with this model`);
    }
    const gallery = new Gallery(header.embedding_space_id, header.dim, header.accept_rule);
    header.labels.forEach((label, i) => gallery.rows.push({
      label, source: header.sources[i], embedding: vectors.subarray(i * header.dim, (i + 1) * header.dim),
    }));
    return { gallery, header, checksum };
  }
}
