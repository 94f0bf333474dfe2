// Shared harness for the browser tests and the browser benchmark: a static server on 127.0.0.1
// (the package, www/, these pages, and the model at /model.gguf), Debian's headless Chromium via
// playwright-core, and a guard that fails any request leaving 127.0.0.1.
import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..', '..');
const cacheDir = process.env.WISP_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'wisp');
export const wispBin = path.join(root, 'target', 'release', 'wisp');

/** The default model's path (fetched and checked by `wisp fetch`). */
export function defaultModel() {
  if (process.env.WISP_MODEL) return process.env.WISP_MODEL;
  return execFileSync(wispBin, ['fetch'], { encoding: 'utf8', env: { ...process.env, WISP_CACHE: cacheDir } }).trim().split('\n').pop();
}

const MIME = {
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html; charset=utf-8', '.css': 'text/css',
  '.wasm': 'application/wasm', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8',
  '.gguf': 'application/octet-stream', '.webmanifest': 'application/manifest+json',
};

/**
 * Serves `roots` (url prefix → directory) and extra files on 127.0.0.1. `coi` adds COOP/COEP.
 * `slow` (bytes/s) throttles /model.gguf so aborts during download can be tested.
 */
export async function serve({ roots = {}, files = {}, coi = false } = {}) {
  const state = { requests: [], slow: 0 };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1');
    const p = decodeURIComponent(u.pathname);
    state.requests.push(p);
    if (coi) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    res.setHeader('Cache-Control', 'no-store');
    let file = files[p];
    if (!file) {
      for (const [prefix, dir] of Object.entries(roots)) {
        if (p.startsWith(prefix)) {
          const f = path.normalize(path.join(dir, p.slice(prefix.length) || 'index.html'));
          if (f.startsWith(dir)) file = f;
          break;
        }
      }
    }
    fs.stat(file ?? '', (err, st) => {
      if (err || !st.isFile()) { res.statusCode = 404; res.end('not found'); return; }
      res.setHeader('Content-Type', MIME[path.extname(file)] || 'application/octet-stream');
      res.setHeader('Content-Length', st.size);
      const stream = fs.createReadStream(file, state.slow && file.endsWith('.gguf') ? { highWaterMark: 64 * 1024 } : {});
      if (state.slow && file.endsWith('.gguf')) {
        stream.on('data', () => { stream.pause(); setTimeout(() => stream.resume(), (64 * 1024 * 1000) / state.slow); });
      }
      stream.pipe(res);
      res.on('close', () => stream.destroy());
    });
  });
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  const close = () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); });
  return { url, state, close };
}

/** Headless Chromium with WebGPU (SwiftShader) unless `webgpu` is false; a fresh profile each time. */
export async function launch({ webgpu = true } = {}) {
  const args = [
    '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-quic', '--disable-features=OptimizationHints,MediaRouter,Translate',
  ];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wisp-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args,
  });
  const offsite = [];
  // nothing may leave 127.0.0.1: record and block anything else
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.protocol === 'data:' || u.protocol === 'blob:' || u.hostname === '127.0.0.1') return route.continue();
    offsite.push(u.href);
    return route.abort('blockedbyclient');
  });
  const close = async () => { await context.close(); fs.rmSync(userDataDir, { recursive: true, force: true }); };
  return { context, offsite, close };
}

/** A page at `url` whose console errors are collected; `wisp` is window.wisp once loaded. */
export async function open(context, url) {
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(url);
  return { page, logs };
}

/** Greedy ids from the native CLI (the reference the browser must reproduce). */
export function nativeIds(model, prompt, { chat = false, maxTokens = 64 } = {}) {
  const args = ['generate', '--model', model, '--prompt', prompt, '--temperature', '0', '--max-tokens', String(maxTokens), '--backend', 'cpu', '--json'];
  if (chat) args.push('--chat');
  const out = execFileSync(wispBin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out);
}
