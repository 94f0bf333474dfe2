#!/usr/bin/env node
// A static server on 127.0.0.1 for www/ (the demo page and the tutor page), pkg/ at /pkg/ (the
// package, the widget and its renderer included) and the default model at /models/default.gguf.
// `make serve` runs it; the browser tests import serve() from here. No dependencies beyond Node.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MIME = {
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html; charset=utf-8', '.css': 'text/css',
  '.wasm': 'application/wasm', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8',
  '.gguf': 'application/octet-stream', '.webmanifest': 'application/manifest+json', '.svg': 'image/svg+xml',
};

/**
 * Serves `roots` (URL prefix → directory, first match wins) and `files` (path → file) on
 * 127.0.0.1:`port` (0 = any). `coi` adds COOP/COEP headers; `csp` a Content-Security-Policy. `state.slow` (bytes/s) throttles
 * .gguf responses so tests can abort a download; `state.requests` lists the paths asked for.
 */
export async function serve({ roots = {}, files = {}, coi = false, csp = null, port = 0 } = {}) {
  const state = { requests: [], slow: 0 };
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
    state.requests.push(p);
    if (coi) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    if (csp) res.setHeader('Content-Security-Policy', csp);
    res.setHeader('Cache-Control', 'no-cache');
    let file = files[p];
    if (!file) {
      for (const [prefix, dir] of Object.entries(roots)) {
        if (!p.startsWith(prefix)) continue;
        const f = path.normalize(path.join(dir, p.slice(prefix.length) || 'index.html'));
        if (f.startsWith(path.normalize(dir))) file = f;
        break;
      }
    }
    fs.stat(file ?? '', (err, st) => {
      if (err || !st.isFile()) { res.statusCode = 404; res.end('not found'); return; }
      res.setHeader('Content-Type', MIME[path.extname(file)] || 'application/octet-stream');
      res.setHeader('Content-Length', st.size);
      const slow = state.slow && file.endsWith('.gguf');
      const stream = fs.createReadStream(file, slow ? { highWaterMark: 64 * 1024 } : {});
      if (slow) stream.on('data', () => { stream.pause(); setTimeout(() => stream.resume(), (64 * 1024 * 1000) / state.slow); });
      stream.pipe(res);
      res.on('close', () => stream.destroy());
    });
  });
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve); });
  const url = `http://127.0.0.1:${server.address().port}`;
  const close = () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); });
  return { url, state, close };
}

/** The site `make serve` serves: www/ at /, pkg/ at /pkg/, the model at /models/default.gguf,
 * cross-origin isolated (COOP/COEP), so the package runs its threaded build. */
export function siteRoots(root, model) {
  return { roots: { '/pkg/': path.join(root, 'pkg'), '/': path.join(root, 'www') }, files: { '/models/default.gguf': model }, coi: true };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const model = process.env.WISP_MODEL || execFileSync(path.join(root, 'target/release/wisp'), ['fetch'], { encoding: 'utf8' }).trim().split('\n').pop();
  const port = Number(process.env.PORT || 8080);
  const { url } = await serve({ ...siteRoots(root, model), port });
  console.log(`wisp: serving ${url}/ (demo) and ${url}/tutor.html (widget); model ${model}`);
}
