// Service worker: keeps the demo page, the widget and the package available offline after the
// first visit (stale-while-revalidate for the app shell). Model files are not handled here: the
// package keeps them in its own Cache API store, keyed by URL.
const SHELL = 'wisp-shell-v6';
const FILES = ['./', './index.html', './app.js', './app.css', './tutor.js', './tutor.html', './tutor-page.css',
  './pkg/index.js', './pkg/worker.js', './pkg/worker-client.js', './pkg/render.js', './pkg/tutor.js',
  './pkg/generated/wisp.js', './pkg/generated/wisp_bg.wasm',
  './pkg/generated/relaxed/wisp.js', './pkg/generated/relaxed/wisp_bg.wasm',
  './pkg/thread.js', './pkg/generated/threads/wisp.js', './pkg/generated/threads/wisp_bg.wasm'];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

// an older shell's files go; the package's model store ('wisp-models-…') is not ours to touch
self.addEventListener('activate', (e) => e.waitUntil(caches.keys()
  .then((keys) => Promise.all(keys.filter((k) => k.startsWith('wisp-shell-') && k !== SHELL).map((k) => caches.delete(k))))
  .then(() => self.clients.claim())));

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.endsWith('.gguf')) return;
  e.respondWith(caches.open(SHELL).then(async (cache) => {
    const hit = await cache.match(e.request, { ignoreSearch: true });
    const fresh = fetch(e.request).then((res) => {
      if (res.ok) cache.put(e.request, res.clone());
      return res;
    }).catch(() => hit ?? Response.error());
    return hit ?? fresh;
  }));
});
