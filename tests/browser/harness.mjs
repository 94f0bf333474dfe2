// Shared harness for the browser tests and the browser benchmark: a static server on 127.0.0.1
// (the package, www/, these pages, and the model at /model.gguf), Debian's headless Chromium via
// playwright-core, and a guard that fails any request leaving 127.0.0.1.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
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

/** A known model's cached path by name (`wisp fetch NAME`: fetched and checked first). */
export function knownModel(name) {
  return execFileSync(wispBin, ['fetch', name], { encoding: 'utf8', env: { ...process.env, WISP_CACHE: cacheDir } }).trim().split('\n').pop();
}

export { serve } from '../../scripts/serve.mjs';

/** Headless Chromium with WebGPU (SwiftShader) unless `webgpu` is false; a fresh profile each time. */
export async function launch({ webgpu = true } = {}) {
  const args = [
    '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-quic', '--disable-features=OptimizationHints,MediaRouter,Translate',
  ];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  // Chromium occasionally dies while starting on a loaded machine ("Target page, context or
  // browser has been closed"): try three times, each with a fresh profile, before failing.
  let context, userDataDir, lastError;
  for (let attempt = 1; attempt <= 3 && !context; attempt++) {
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wisp-chromium-'));
    try {
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args, timeout: 60_000,
      });
    } catch (err) {
      lastError = err;
      fs.rmSync(userDataDir, { recursive: true, force: true });
      console.error(`# chromium launch attempt ${attempt} failed: ${String(err.message ?? err).split('\n')[0]}`);
      await new Promise((r) => setTimeout(r, 2000 * attempt));
    }
  }
  if (!context) throw lastError;
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

/**
 * Runs `fn(arg)` in a fresh page at `url`/ once `window.wisp` is ready (`onPage(page)` first, e.g.
 * to watch requests); the page's log is attached to a failure, and the page is always closed.
 */
export async function inPageOf(context, url, fn, arg, { onPage } = {}) {
  const p = await open(context, url + '/');
  await p.page.waitForFunction(() => window.wispReady);
  try {
    await onPage?.(p.page);
    return await p.page.evaluate(fn, arg);
  } catch (e) {
    throw new Error(`${e.message}\npage log:\n${p.logs.join('\n')}`);
  } finally {
    await p.page.close();
  }
}

/** Greedy ids from the native CLI (the reference the browser must reproduce). */
export function nativeIds(model, prompt, { chat = false, maxTokens = 64, numerics = 'exact', logprobs } = {}) {
  const args = ['generate', '--model', model, '--prompt', prompt, '--temperature', '0', '--max-tokens', String(maxTokens), '--backend', 'cpu', '--numerics', numerics, '--json'];
  if (chat) args.push('--chat');
  if (logprobs !== undefined) args.push('--logprobs', String(logprobs));
  const out = execFileSync(wispBin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out);
}

/**
 * Fails, naming what is missing, unless the page's browser has a WebGPU adapter: a WebGPU test
 * must never pass (or skip) without one. Returns the adapter's description.
 */
export async function requireWebGpu(page) {
  const got = await page.evaluate(async () => {
    if (!navigator.gpu) return { missing: 'navigator.gpu is missing (this browser has no WebGPU)' };
    let adapter;
    try {
      adapter = await navigator.gpu.requestAdapter();
    } catch (e) {
      return { missing: `navigator.gpu.requestAdapter() threw ${e.name}: ${e.message}` };
    }
    if (!adapter) return { missing: 'navigator.gpu.requestAdapter() returned null: no WebGPU adapter' };
    const i = adapter.info ?? {};
    return { adapter: [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unnamed' };
  });
  assert.ok(!got.missing, `this WebGPU test needs a WebGPU adapter in Chromium (SwiftShader, --enable-unsafe-webgpu): ${got.missing}`);
  return got.adapter;
}

/** The native CLI's perplexity of `file` in windows of `ctx` tokens (CPU backend, exact numerics). */
export function nativePerplexity(model, file, ctx) {
  const out = execFileSync(wispBin, ['perplexity', '--model', model, '--file', file, '--ctx', String(ctx), '--backend', 'cpu', '--json'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').pop());
}

/**
 * `npm pack` of pkg/ installed (offline, from the tarball) into a fresh project, as a page's
 * build would get it: `{ project, installed, tarball, files, cleanup }`, `installed` being
 * node_modules/wisp-llm and `files` the tarball's paths.
 */
export function installPacked() {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'wisp-pack-'));
  const cleanup = () => fs.rmSync(project, { recursive: true, force: true });
  try {
    const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--offline', '--silent'], { cwd, encoding: 'utf8' });
    const [info] = JSON.parse(npm(['pack', '--json', '--pack-destination', project], path.join(root, 'pkg')));
    const tarball = path.join(project, info.filename);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'wisp-pack-check', private: true, type: 'module' }));
    npm(['install', tarball], project);
    return { project, installed: path.join(project, 'node_modules', 'wisp-llm'), tarball, files: info.files.map((f) => f.path), cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}
