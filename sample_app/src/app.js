// The page: load the model and gallery, take a photo (camera or file), match it, enroll it,
// import / export the gallery. Everything runs on the device; nothing is uploaded.

import { Camera } from "./camera.js";
import { decodeImage, sha256Hex, toImageData } from "./decode.js";
import { answer, DEFAULT_RULE, Gallery, score3 } from "./gallery.js";
import { contentBox } from "./local_codes.js";
import { Model } from "./model.js";
import { loadStored, saveStored } from "./store.js";
import { ITEM_DETECT_SIDE, PHOTO_DETECT_SIDE, TextReader, textImage } from "./text_reader.js";
import { labelWords, verifyScores } from "./text_verify.js";
import { carryThumbnails, makeThumbnail, thumbnailElement } from "./thumbnail.js";
import { zoomToItem } from "./zoomed_photo.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { model: null, gallery: null, photo: null, lastResult: null, photos: 0,
  text: { name: null, reader: null, off: null } }; // the OCR reader of the gallery's text_reader (a promise)
const CONTROLS = ["file-input", "camera-button", "import-input", "export-button"]; // usable once the model runs
const ZOOM = params.get("zoom") !== "0"; // photos zoomed to their item (zoomed_photo.js); ?zoom=0: the first pass answers

/** The loading line while the model downloads and onnxruntime-web starts. */
function showLoading(stage, loaded, total) {
  const mb = (n) => (n / 1e6).toFixed(1);
  const bar = $("loading-bar");
  if (stage === "download") {
    $("loading-text").textContent = total ? `Loading the model… ${mb(loaded)} of ${mb(total)} MB` : `Loading the model… ${mb(loaded)} MB`;
    if (total) Object.assign(bar, { max: total, value: loaded }); else bar.removeAttribute("value");
  } else {
    $("loading-text").textContent = "Starting the inference engine (onnxruntime-web, wasm)…";
    bar.removeAttribute("value");
  }
}

/** The first screen's steps: each ticked once done; the list goes once all are. */
function renderSteps() {
  const done = { "step-model": !!state.model, "step-gallery": state.gallery?.count > 0,
    "step-match": state.gallery?.count > 0 && state.photos > 0 };
  for (const [id, ok] of Object.entries(done)) $(id).classList.toggle("done", ok);
  $("intro").hidden = Object.values(done).every(Boolean);
}

function showError(e) {
  $("error").textContent = e ? String(e.message || e) : "";
  $("error").hidden = !e;
  if (e) console.error(e);
}

function acceptRule() {
  return state.gallery.acceptRule || state.model.meta.accept_rule || DEFAULT_RULE;
}

/** The served gallery seeds the on-device one on the first visit and whenever the served file changes. */
async function loadGallery(model) {
  const spaceId = model.meta.embedding_space_id, url = params.get("gallery") || "gallery.pvg";
  const stored = await loadStored(spaceId);
  const response = await fetch(url).catch(() => null);
  if (response?.ok) {
    try {
      const { gallery, checksum } = await Gallery.fromFile(await response.arrayBuffer(), url, spaceId, model.meta.embedding_dim,
        model.meta.local_rerank ?? null, model.meta.weights_digest);
      if (stored?.seededFrom !== checksum) {
        gallery.seededFrom = checksum;
        carryThumbnails(gallery.rows, stored?.rows || []);
        await saveStored(gallery);
        return gallery;
      }
    } catch (e) {
      showError(e); // refused (another model, damaged): keep the on-device gallery
    }
  }
  // A new gallery takes the model's calibrated rule, as pocketvec's Python enrollment does.
  const rerank = model.meta.local_rerank ?? null;
  const gallery = new Gallery(spaceId, model.meta.embedding_dim, stored?.acceptRule ?? model.meta.accept_rule ?? null, rerank);
  gallery.textReader = stored?.textReader ?? null;
  // rows stored for an export of the same weights with (or without) local maps, or coded with another codebook,
  // do not fit this one
  const size = rerank ? rerank.locations * rerank.channels : 0;
  const compact = stored?.codes && stored.codes.digest === rerank?.codebook?.digest;
  gallery.codes = compact ? stored.codes : null;
  for (const r of stored?.rows || []) if (compact ? r.codes : !stored?.codes && (r.local?.length ?? 0) === size) gallery.rows.push(r);
  gallery.seededFrom = stored?.seededFrom ?? null;
  return gallery;
}

/** The OCR reader for the gallery's printed text (a promise of it, or of null when the gallery keeps none or the
 * OCR files cannot be had: the page then answers by the image alone and says so once). */
function textReader() {
  const name = state.gallery?.textReader ?? null;
  if (name !== state.text.name) {
    const entry = { name, off: null, reader: Promise.resolve(null) };
    if (name !== null) {
      entry.reader = TextReader.load(name, `ocr/${encodeURIComponent(name)}/`).catch((e) => {
        entry.off = `the OCR models "${name}" could not be loaded (${e.message || e}): the page answers by the image alone`;
        console.warn(`pocketvec: text verification off: ${entry.off}`);
        return null;
      });
      entry.reader.then(renderTextInfo);
    }
    state.text = entry;
  }
  renderTextInfo();
  return state.text.reader;
}

function renderTextInfo() {
  const { name, off } = state.text;
  $("text-info").textContent = name === null ? "" : off ? `Text verification off: ${off}.`
    : `Text verification: on (OCR models ${name}, read on this device).`;
}

/** Label-level scores verified by the photo's printed text when the gallery keeps texts (text_verify.js): read in
 * the item's `region` when zoom found one, else the whole photo. */
async function verifiedByText(all, img, region) {
  const reader = await textReader();
  if (!reader) return { top: all, text: null };
  let readMs = 0;
  const read = async () => {
    const t0 = performance.now();
    const text = await reader.readText(textImage(img, region), PHOTO_DETECT_SIDE);
    readMs = performance.now() - t0;
    return text;
  };
  const verified = await verifyScores(all, labelWords(state.gallery.rows), read);
  return { top: verified.top, text: { read: verified.read, text: verified.text, readMs, region: Boolean(region) } };
}

function renderGallery() {
  const g = state.gallery, list = $("gallery-list");
  const labels = g.labelRows();
  list.replaceChildren(...[...labels].map(([label, rows]) => {
    const li = document.createElement("li"), n = rows.length;
    const text = Object.assign(document.createElement("span"), { textContent: `${label} (${n} photo${n > 1 ? "s" : ""})` });
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "remove" });
    remove.onclick = () => guarded(async () => {
      g.removeLabel(label);
      await saveStored(g);
      renderGallery();
    });
    li.append(thumbnailElement(rows), text, remove);
    return li;
  }));
  $("gallery-count").textContent = `${labels.size} labels, ${g.count} rows`;
  const rule = acceptRule();
  const from = g.acceptRule ? "gallery" : state.model.meta.accept_rule ? "model" : "default, not calibrated";
  $("rule-info").textContent = `Accept rule (${from}): best ≥ ${score3(rule.threshold)} and best − next label ≥ ${score3(rule.margin)}`
    + (rule.precision != null ? ` (precision ${score3(rule.precision)}, recall ${score3(rule.recall)} when calibrated)` : "");
  renderSteps();
}

function renderResult(result) {
  $("result-section").hidden = false;
  const decision = $("decision");
  decision.textContent = result.accepted ? `✓ ${result.label}` : `Unknown (${result.reason})`;
  decision.className = `decision ${result.accepted ? "accepted" : "unknown"}`;
  $("top3").tBodies[0].replaceChildren(...result.top.map((t, i) => {
    const tr = document.createElement("tr");
    const width = Math.max(0, Math.min(1, t.score)) * 100;
    tr.innerHTML = `<td>${i + 1}</td><td></td><td>${score3(t.score)}</td><td class="bar-cell"><div class="bar" style="width:${width}%"></div></td>`;
    tr.children[1].textContent = t.label;
    return tr;
  }));
  if (result.top.length === 0) decision.textContent = "The gallery is empty: enroll a photo first.";
  const z = result.zoom;
  $("timing").textContent = `Inference ${result.inferenceMs.toFixed(1)} ms, preprocessing ${result.preprocessMs.toFixed(1)} ms `
    + `(${state.model.spec.input_size}px, ${state.model.photoCrops.join(" + ")}, ${state.model.spec.resample}).`
    + (z ? ` Zoomed to the item: ${z.region[3] - z.region[1]} x ${z.region[2] - z.region[0]} px at (${z.region[1]}, `
      + `${z.region[0]}), embedded again (both passes counted).` : "");
  const t = result.text;
  $("text-result").hidden = !t;
  if (t) {
    $("text-result").textContent = t.read ? `Text verified: read ${JSON.stringify(t.text.replace(/\n/g, " "))} `
      + `${t.region ? "in the item's region " : ""}in ${t.readMs.toFixed(0)} ms.`
      : "Text verification: not needed (the best candidates' printed words agree).";
  }
}

function drawRGB(canvas, img) {
  Object.assign(canvas, { width: img.width, height: img.height, hidden: false });
  canvas.getContext("2d").putImageData(toImageData(img), 0, 0);
}

/** The photo's region outlined on the preview. */
function outline(canvas, [top, left, bottom, right]) {
  const ctx = canvas.getContext("2d");
  ctx.lineWidth = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 200));
  ctx.strokeStyle = "#f5a623";
  ctx.strokeRect(left, top, right - left, bottom - top);
}

/** A new photo: show it, embed it, zoom to its item and embed that region again (unless ?zoom=0 or no candidate
 * locates it), match the answer's embedding against the gallery. */
async function usePhoto(img, source, name) {
  drawRGB($("preview"), img);
  const first = await state.model.embed(img, true);
  const zoomed = ZOOM ? await zoomToItem(state.model, state.gallery, img, first) : null;
  const out = zoomed ? { ...zoomed.out, preprocessMs: first.preprocessMs + zoomed.out.preprocessMs,
    inferenceMs: first.inferenceMs + zoomed.out.inferenceMs } : first;
  if (zoomed) outline($("preview"), zoomed.region);
  drawRGB($("model-input"), out.pixels); // exactly what the model saw (crop mode, filter; the item's region)
  const verified = await verifiedByText(state.gallery.scores(out.embedding, out.local), img, zoomed?.region);
  const match = answer(verified.top, 3, acceptRule());
  // enrolling the photo takes the whole photo, as an item
  state.photo = { source, name, embedding: first.embedding, local: first.local, img };
  const zoom = zoomed && { region: zoomed.region, first: { embedding: first.embedding, local: first.local } };
  state.lastResult = { ...out, ...match, name, text: verified.text, zoom };
  state.photos += 1;
  renderResult(state.lastResult);
  renderSteps();
  $("enroll-button").disabled = false;
  $("enroll-status").textContent = `Photo: ${name}`;
}

async function guarded(fn) {
  try {
    showError(null);
    await fn();
  } catch (e) {
    showError(e);
  }
}

function download(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  Object.assign(document.createElement("a"), { href: url, download: name }).click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The printed text of a photo enrolled as an item, read as Python's enrolment reads it; null when the gallery
 * keeps no texts. A gallery that keeps texts refuses a row whose text cannot be read. */
async function itemText(photo) {
  if (!state.gallery.textReader) return null;
  const reader = await textReader();
  if (!reader) {
    throw new Error(`enroll: this gallery keeps each item's printed text, and ${state.text.off}; enroll with `
      + "`pocketvec gallery add`, or serve the page with the OCR models (pip install 'pocketvec[text]')");
  }
  return reader.readText(photo.img, ITEM_DETECT_SIDE);
}

function wire(camera) {
  $("file-input").onchange = (ev) => guarded(async () => {
    const file = ev.target.files[0];
    if (!file) return;
    const bytes = await file.arrayBuffer();
    await usePhoto(await decodeImage(file), await sha256Hex(bytes), file.name);
    ev.target.value = "";
  });
  $("camera-button").onclick = () => guarded(async () => {
    if (camera.running) camera.stop(); else await camera.start();
    $("camera").hidden = $("capture-button").hidden = !camera.running;
    $("camera-button").textContent = camera.running ? "Stop camera" : "Use camera";
  });
  $("capture-button").onclick = () => guarded(async () => {
    const img = camera.capture();
    await usePhoto(img, await sha256Hex(img.data), `camera ${new Date().toLocaleTimeString()}`);
  });
  $("enroll-form").onsubmit = (ev) => {
    ev.preventDefault();
    guarded(async () => {
      const label = $("label-input").value;
      const photo = state.photo;
      // the gallery holds items' embeddings: re-embed the photo as an item when the model crops queries otherwise
      const crops = state.model.photoCrops;
      const asItem = crops.length === 1 && crops[0] === state.model.spec.crop_mode;
      const row = asItem ? photo : await state.model.embed(photo.img);
      const text = await itemText(photo);
      const rerank = state.model.meta.local_rerank ?? null; // a compact gallery codes the item's content box
      const box = rerank ? contentBox(photo.img.height, photo.img.width, state.model.spec, rerank.locations) : null;
      const out = state.gallery.add(label, photo.source, row.embedding, makeThumbnail(photo.img), row.local, text, box);
      if (out.added) {
        await saveStored(state.gallery);
        $("label-input").value = "";
      }
      $("enroll-status").textContent = out.added ? `Enrolled ${state.photo.name} as "${label.trim()}".` : `Not enrolled: ${out.reason}.`;
      renderGallery();
    });
  };
  $("import-input").onchange = (ev) => guarded(async () => {
    const file = ev.target.files[0];
    if (!file) return;
    ev.target.value = "";
    const meta = state.model.meta;
    const { gallery } = await Gallery.fromFile(await file.arrayBuffer(), file.name, meta.embedding_space_id, meta.embedding_dim,
      meta.local_rerank ?? null, meta.weights_digest);
    gallery.seededFrom = state.gallery.seededFrom; // the served file still seeds only when it changes
    carryThumbnails(gallery.rows, state.gallery.rows); // a .pvg has no images: keep those of the same photos
    state.gallery = gallery;
    await saveStored(gallery);
    renderGallery();
    textReader();
  });
  $("export-button").onclick = () => guarded(async () => { // the file records the digest of the model in use
    const meta = state.model.meta;
    download(await state.gallery.toFile("float32", meta.pocketvec_version, meta.weights_digest ?? null), "gallery.pvg");
  });
}

async function main() {
  const url = params.get("model") || "model.onnx";
  state.model = await Model.load(url, showLoading);
  const m = state.model.meta, p = m.preprocess;
  const photoCrop = state.model.photoCrops.join(" + ");
  const crop = photoCrop === p.crop_mode ? p.crop_mode : `${p.crop_mode} (photos: ${photoCrop})`;
  $("model-info").textContent = `${m.model_name || url} · ${p.input_size}px ${crop} (${p.resample}) · `
    + `dim ${m.embedding_dim} · space ${m.embedding_space_id} · onnxruntime-web wasm`;
  state.gallery = await loadGallery(state.model);
  renderGallery();
  textReader(); // loads in the background; a photo waits for it
  wire(new Camera($("camera")));
  for (const id of CONTROLS) $(id).disabled = false;
}

if ("serviceWorker" in navigator && params.get("sw") !== "0") {
  navigator.serviceWorker.register("sw.js").catch((e) => console.warn("offline cache unavailable:", e));
}
const ready = main().catch((e) => {
  showError(e);
  throw e;
}).finally(() => { $("loading").hidden = true; });
ready.catch(() => {}); // shown on the page; `pocketvecApp.ready` still rejects for whoever awaits it
window.pocketvecApp = { state, ready, textReader };
