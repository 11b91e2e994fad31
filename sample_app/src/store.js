// Keeps the gallery on the device in IndexedDB, one gallery per model embedding space.

const DB_NAME = "pocketvec", DB_VERSION = 1, STORE = "galleries";

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function openDb() {
  const req = indexedDB.open(DB_NAME, DB_VERSION);
  req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "spaceId" });
  return request(req);
}

/** The stored record for a space: {spaceId, dim, acceptRule, seededFrom, textReader, codes (a compact gallery's
 * codebook digest and subvectors, or null), rows (with thumb, and text when the gallery keeps texts)}, or
 * undefined. */
export async function loadStored(spaceId) {
  const db = await openDb();
  try {
    return await request(db.transaction(STORE).objectStore(STORE).get(spaceId));
  } finally {
    db.close();
  }
}

/** Save the gallery (its `seededFrom`: the checksum of the served file it started from). */
export async function saveStored(gallery) {
  const db = await openDb();
  try {
    const tx = db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).put({
      spaceId: gallery.spaceId, dim: gallery.dim, acceptRule: gallery.acceptRule, seededFrom: gallery.seededFrom,
      textReader: gallery.textReader, codes: gallery.codes,
      rows: gallery.rows.map((r) => ({ label: r.label, source: r.source, embedding: Float32Array.from(r.embedding),
        ...(r.local ? { local: Float32Array.from(r.local) } : {}), ...(r.codes ? { box: r.box, codes: r.codes } : {}),
        thumb: r.thumb ?? null,
        ...(typeof r.text === "string" ? { text: r.text } : {}) })),
    });
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}
