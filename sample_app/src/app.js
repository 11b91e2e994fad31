// The page: load the model and gallery, take a photo (camera or file), match it, enroll it,
// import / export the gallery. Everything runs on the device; nothing is uploaded.

import { Camera } from "./camera.js";
import { decodeImage, sha256Hex } from "./decode.js";
import { DEFAULT_RULE, Gallery } from "./gallery.js";
import { Model } from "./model.js";
import { loadStored, saveStored } from "./store.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { model: null, gallery: null, photo: null, lastResult: null, photos: 0 };

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
      const { gallery, checksum } = await Gallery.fromFile(await response.arrayBuffer(), url, spaceId, model.meta.embedding_dim);
      if (stored?.seededFrom !== checksum) {
        gallery.seededFrom = checksum;
        await saveStored(gallery);
        return gallery;
      }
    } catch (e) {
      showError(e); // refused (another model, damaged): keep the on-device gallery
    }
  }
  // A new gallery takes the model's calibrated rule, as pocketvec's Python enrollment does.
  const gallery = new Gallery(spaceId, model.meta.embedding_dim, stored?.acceptRule ?? model.meta.accept_rule ?? null);
  for (const r of stored?.rows || []) gallery.rows.push(r);
  gallery.seededFrom = stored?.seededFrom ?? null;
  return gallery;
}

function renderGallery() {
  const g = state.gallery, list = $("gallery-list");
  list.replaceChildren(...[...g.labelCounts()].map(([label, n]) => {
    const li = document.createElement("li");
    li.textContent = `${label} (${n} photo${n > 1 ? "s" : ""})`;
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "remove" });
    remove.onclick = () => guarded(async () => {
      g.removeLabel(label);
      await saveStored(g);
      renderGallery();
    });
    li.append(remove);
    return li;
  }));
  $("gallery-count").textContent = `${g.labelCounts().size} labels, ${g.count} rows`;
  const rule = acceptRule();
  const from = g.acceptRule ? "gallery" : state.model.meta.accept_rule ? "model" : "default, not calibrated";
  $("rule-info").textContent = `Accept rule (${from}): best ≥ ${rule.threshold} and best − next label ≥ ${rule.margin}`
    + (rule.precision != null ? ` (precision ${rule.precision}, recall ${rule.recall} when calibrated)` : "");
}

function renderResult(result) {
  $("result-section").hidden = false;
  const decision = $("decision");
  decision.textContent = result.accepted ? `✓ ${result.label}` : `Unknown (${result.reason})`;
  decision.className = `decision ${result.accepted ? "accepted" : "unknown"}`;
  $("top3").tBodies[0].replaceChildren(...result.top.map((t, i) => {
    const tr = document.createElement("tr");
    const width = Math.max(0, Math.min(1, t.score)) * 100;
    tr.innerHTML = `<td>${i + 1}</td><td></td><td>${t.score.toFixed(4)}</td><td class="bar-cell"><div class="bar" style="width:${width}%"></div></td>`;
    tr.children[1].textContent = t.label;
    return tr;
  }));
  if (result.top.length === 0) decision.textContent = "The gallery is empty: enroll a photo first.";
  $("timing").textContent = `Inference ${result.inferenceMs.toFixed(1)} ms, preprocessing ${result.preprocessMs.toFixed(1)} ms `
    + `(${state.model.spec.input_size}px, ${state.model.spec.crop_mode}, ${state.model.spec.resample}).`;
}

function drawRGB(canvas, img) {
  Object.assign(canvas, { width: img.width, height: img.height, hidden: false });
  const rgba = new ImageData(img.width, img.height);
  for (let i = 0, j = 0; j < img.data.length; i += 4, j += 3) {
    rgba.data.set(img.data.subarray(j, j + 3), i);
    rgba.data[i + 3] = 255;
  }
  canvas.getContext("2d").putImageData(rgba, 0, 0);
}

/** A new photo: show it, embed it, match it against the gallery. */
async function usePhoto(img, source, name) {
  drawRGB($("preview"), img);
  const out = await state.model.embed(img);
  drawRGB($("model-input"), out.pixels); // exactly what the model saw (crop mode, filter)
  const match = state.gallery.match(out.embedding, 3, acceptRule());
  state.photo = { source, name, embedding: out.embedding };
  state.lastResult = { ...out, ...match, name };
  state.photos += 1;
  renderResult(state.lastResult);
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
      const out = state.gallery.add(label, state.photo.source, state.photo.embedding);
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
    const { gallery } = await Gallery.fromFile(await file.arrayBuffer(), file.name, meta.embedding_space_id, meta.embedding_dim);
    gallery.seededFrom = state.gallery.seededFrom; // the served file still seeds only when it changes
    state.gallery = gallery;
    await saveStored(gallery);
    renderGallery();
  });
  $("export-button").onclick = () => guarded(async () => download(await state.gallery.toFile("float32", state.model.meta.pocketvec_version), "gallery.pvg"));
}

async function main() {
  const url = params.get("model") || "model.onnx";
  state.model = await Model.load(url);
  const m = state.model.meta, p = m.preprocess;
  $("model-info").textContent = `${m.model_name || url} · ${p.input_size}px ${p.crop_mode} (${p.resample}) · `
    + `dim ${m.embedding_dim} · space ${m.embedding_space_id} · onnxruntime-web wasm`;
  state.gallery = await loadGallery(state.model);
  renderGallery();
  wire(new Camera($("camera")));
}

if ("serviceWorker" in navigator && params.get("sw") !== "0") {
  navigator.serviceWorker.register("sw.js").catch((e) => console.warn("offline cache unavailable:", e));
}
window.pocketvecApp = { state, ready: main().catch((e) => { showError(e); throw e; }) };
