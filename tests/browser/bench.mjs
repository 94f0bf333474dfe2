// Browser benchmark: in one headless Chromium session on this machine, our CPU (wasm, both
// numerics; the single-thread builds, and the threaded build at 1 and 2 threads in a cross-origin-isolated
// page) and WebGPU backends and wllama (llama.cpp in wasm) with 1 and 2 threads, on the same GGUF, the same
// 128-token prompt (benches/bench_prompt.txt, no BOS) and 128 greedy tokens (end-of-generation
// ignored). Prints one table row per run, our/wllama ratios, load times and the gzipped wasm size.
//
// usage: node bench.mjs [--runs 3] [--gpu-tokens N] [--model NAME|PATH]   (WISP_MODEL, WISP_CACHE as
// for the tests; --model takes a known model's name, e.g. gemma3-270m, or a GGUF path)
// WebGPU runs only on a real adapter unless --gpu-tokens N asks for N tokens on a CPU-emulated
// one (SwiftShader takes seconds per token here).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { serve, launch, defaultModel, knownModel, root, here } from './harness.mjs';

const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
const RUNS = Number(arg('runs', '3'));
const GPU_TOKENS = Number(arg('gpu-tokens', '0'));
const N = 128;
const WLLAMA = '3.8.1';

const cache = process.env.WISP_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'wisp');
const wdir = path.join(cache, `wllama-${WLLAMA}`);
if (!fs.existsSync(path.join(wdir, 'node_modules/@wllama/wllama/esm/index.js'))) {
  fs.mkdirSync(wdir, { recursive: true });
  execFileSync('npm', ['install', '--prefix', wdir, '--silent', '--no-audit', '--no-fund', `@wllama/wllama@${WLLAMA}`], { stdio: 'inherit' });
}
const modelArg = arg('model', '');
const model = !modelArg ? defaultModel() : fs.existsSync(modelArg) ? modelArg : knownModel(modelArg);
const prompt = fs.readFileSync(path.join(root, 'benches/bench_prompt.txt'), 'utf8').replace(/\s+$/, '');
const wasm = fs.readFileSync(path.join(root, 'pkg/generated/wisp_bg.wasm'));
const site = {
  roots: { '/pkg/': path.join(root, 'pkg'), '/wllama/': path.join(wdir, 'node_modules/@wllama/wllama/esm') },
  files: { '/': path.join(here, 'page.html'), '/wllama.html': path.join(here, 'wllama.html'), '/model.gguf': model },
};
// cross-origin isolated (COOP/COEP): wllama's threads and our threaded build; without it, our
// single-thread builds (what a page that does not send the headers gets)
const server = await serve({ ...site, coi: true });
const plainServer = await serve(site);
const browser = await launch();
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function ours(backend, n, numerics = 'exact', threads = null) {
  const page = await browser.context.newPage();
  await page.goto((threads ? server : plainServer).url + '/');
  await page.waitForFunction(() => window.wispReady);
  const r = await page.evaluate(async ({ backend, prompt, n, numerics, threads }) => {
    const t0 = performance.now();
    const e = await wisp.Engine.load('/model.gguf', { backend, cache: false, numerics, threads: threads ?? undefined });
    const load = (performance.now() - t0) / 1000;
    const ids = await e.tokenize(prompt);
    const c = await e.complete(ids, { temperature: 0, maxTokens: n, ignoreEos: true });
    const info = e.info;
    await e.dispose();
    return { load_s: load, prefill_tokens: ids.length, prefill_tok_s: c.timings.prefillTokensPerSecond,
      decode_tokens: c.usage.completionTokens, decode_tok_s: c.timings.decodeTokensPerSecond, adapter: info.adapter ?? '', backend: info.backend,
      wasm_build: info.wasmBuild, threads: info.threads };
  }, { backend, prompt, n, numerics, threads });
  await page.close();
  return r;
}

async function wllama(threads) {
  const page = await browser.context.newPage();
  await page.goto(server.url + '/wllama.html');
  await page.waitForFunction(() => window.wllamaReady && self.crossOriginIsolated);
  const r = await page.evaluate((a) => window.runWllama(a), { threads, prompt, nPredict: N });
  await page.close();
  return { ...r, threads };
}

const gpuInfo = await (async () => {
  const page = await browser.context.newPage();
  await page.goto(server.url + '/');
  const i = await page.evaluate(async () => {
    const a = await navigator.gpu?.requestAdapter();
    return a ? { vendor: a.info?.vendor, architecture: a.info?.architecture, description: a.info?.description, fallback: a.isFallbackAdapter ?? a.info?.isFallbackAdapter } : null;
  });
  await page.close();
  return i;
})();
const emulated = !gpuInfo || /swiftshader|llvmpipe|lavapipe/i.test(JSON.stringify(gpuInfo)) || gpuInfo.fallback;

const configs = [
  ['wisp cpu (wasm)', () => ours('cpu', N)],
  ["wisp cpu (wasm, numerics 'llamacpp')", () => ours('cpu', N, 'llamacpp')],
  ['wisp cpu threaded, 1 thread', () => ours('cpu', N, 'exact', 1)],
  ["wisp cpu threaded, 1 thread, 'llamacpp'", () => ours('cpu', N, 'llamacpp', 1)],
  ['wisp cpu threaded, 2 threads', () => ours('cpu', N, 'exact', 2)],
  ["wisp cpu threaded, 2 threads, 'llamacpp'", () => ours('cpu', N, 'llamacpp', 2)],
  ['wllama 1 thread', () => wllama(1)],
  ['wllama 2 threads', () => wllama(2)],
];
if (!emulated) configs.unshift(['wisp webgpu', () => ours('webgpu', N)]);
else if (GPU_TOKENS > 0) configs.unshift([`wisp webgpu (${GPU_TOKENS} tokens, emulated)`, () => ours('webgpu', GPU_TOKENS)]);

const results = {};
for (let run = 0; run < RUNS; run++) {
  for (const [name, fn] of configs) (results[name] ??= []).push(await fn());
}
await browser.close();
await server.close();
await plainServer.close();

const rows = Object.entries(results).map(([name, rs]) => ({
  name: rs[0].wasm_build ? `${name} [${rs[0].wasm_build}]` : name, load_s: median(rs.map((r) => r.load_s)), prefill_tok_s: median(rs.map((r) => r.prefill_tok_s)),
  decode_tok_s: median(rs.map((r) => r.decode_tok_s)), prefill_tokens: rs[0].prefill_tokens, decode_tokens: rs[0].decode_tokens,
  threads: rs[0].threads ?? 1,
}));
const w2 = rows.find((r) => r.name === 'wllama 2 threads');
const w1 = rows.find((r) => r.name === 'wllama 1 thread');
console.log(`chromium ${browser.context.browser()?.version?.() ?? ''} · ${os.cpus().length} cores · WebGPU adapter: ${gpuInfo ? JSON.stringify(gpuInfo) : 'none'}${emulated ? ' (CPU-emulated: WebGPU not raced)' : ''}`);
console.log(`model ${path.basename(model)} (${(fs.statSync(model).size / 1e6).toFixed(0)} MB) · medians of ${RUNS} runs · prompt ${rows[0].prefill_tokens} tokens · ${N} greedy tokens · wisp wasm ${(wasm.length / 1024).toFixed(0)} KiB, ${(zlib.gzipSync(wasm, { level: 9 }).length / 1024).toFixed(0)} KiB gzipped`);
// ratios against wllama at the same thread count (our single-thread builds and WebGPU: 1), and
// the decode ratio against wllama's two threads
console.log('| run | threads | load s | prefill tok/s | decode tok/s | prefill vs wllama, same threads | decode vs wllama, same threads | decode vs wllama 2t |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const w = r.threads >= 2 ? w2 : w1;
  console.log(`| ${r.name} | ${r.threads} | ${r.load_s.toFixed(2)} | ${r.prefill_tok_s.toFixed(1)} | ${r.decode_tok_s.toFixed(1)} | ${(r.prefill_tok_s / w.prefill_tok_s).toFixed(2)} | ${(r.decode_tok_s / w.decode_tok_s).toFixed(2)} | ${(r.decode_tok_s / w2.decode_tok_s).toFixed(2)} |`);
}
console.log(JSON.stringify({ rows, adapter: gpuInfo }));
