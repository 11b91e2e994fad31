// Offline once loaded: every GET of this app (pages, scripts, onnxruntime-web's wasm, the model
// and gallery) goes to the network first and falls back to the copy cached on the last visit.
const CACHE = "pocketvec-app-v1";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(request);
      if (response.ok) await cache.put(request, response.clone());
      return response;
    } catch (e) {
      const cached = await cache.match(request);
      if (cached) return cached;
      throw e;
    }
  })());
});
