// Browser benchmark: in one headless Chromium session on this machine, our CPU (wasm, both
// numerics) and WebGPU backends and wllama (llama.cpp in wasm) with 1 and 2 threads, on the same GGUF, the same
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
const server = await serve({
  coi: true, // wllama needs cross-origin isolation for threads
  roots: { '/pkg/': path.join(root, 'pkg'), '/wllama/': path.join(wdir, 'node_modules/@wllama/wllama/esm') },
  files: { '/': path.join(here, 'page.html'), '/wllama.html': path.join(here, 'wllama.html'), '/model.gguf': model },
});
const browser = await launch();
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function ours(backend, n, numerics = 'exact') {
  const page = await browser.context.newPage();
  await page.goto(server.url + '/');
  await page.waitForFunction(() => window.wispReady);
  const r = await page.evaluate(async ({ backend, prompt, n, numerics }) => {
    const t0 = performance.now();
    const e = await wisp.Engine.load('/model.gguf', { backend, cache: false, numerics });
    const load = (performance.now() - t0) / 1000;
    const ids = await e.tokenize(prompt);
    const c = await e.complete(ids, { temperature: 0, maxTokens: n, ignoreEos: true });
    const info = e.info;
    await e.dispose();
    return { load_s: load, prefill_tokens: ids.length, prefill_tok_s: c.timings.prefillTokensPerSecond,
      decode_tokens: c.usage.completionTokens, decode_tok_s: c.timings.decodeTokensPerSecond, adapter: info.adapter ?? '', backend: info.backend,
      wasm_build: info.wasmBuild };
  }, { backend, prompt, n, numerics });
  await page.close();
  return r;
}

async function wllama(threads) {
  const page = await browser.context.newPage();
  await page.goto(server.url + '/wllama.html');
  await page.waitForFunction(() => window.wllamaReady && self.crossOriginIsolated);
  const r = await page.evaluate((a) => window.runWllama(a), { threads, prompt, nPredict: N });
  await page.close();
  return r;
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

const rows = Object.entries(results).map(([name, rs]) => ({
  name: rs[0].wasm_build ? `${name} [${rs[0].wasm_build}]` : name, load_s: median(rs.map((r) => r.load_s)), prefill_tok_s: median(rs.map((r) => r.prefill_tok_s)),
  decode_tok_s: median(rs.map((r) => r.decode_tok_s)), prefill_tokens: rs[0].prefill_tokens, decode_tokens: rs[0].decode_tokens,
}));
const w2 = rows.find((r) => r.name === 'wllama 2 threads');
const w1 = rows.find((r) => r.name === 'wllama 1 thread');
console.log(`chromium ${browser.context.browser()?.version?.() ?? ''} · ${os.cpus().length} cores · WebGPU adapter: ${gpuInfo ? JSON.stringify(gpuInfo) : 'none'}${emulated ? ' (CPU-emulated: WebGPU not raced)' : ''}`);
console.log(`model ${path.basename(model)} (${(fs.statSync(model).size / 1e6).toFixed(0)} MB) · medians of ${RUNS} runs · prompt ${rows[0].prefill_tokens} tokens · ${N} greedy tokens · wisp wasm ${(wasm.length / 1024).toFixed(0)} KiB, ${(zlib.gzipSync(wasm, { level: 9 }).length / 1024).toFixed(0)} KiB gzipped`);
console.log('| run | load s | prefill tok/s | decode tok/s | decode vs wllama 1t | decode vs wllama 2t |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.load_s.toFixed(2)} | ${r.prefill_tok_s.toFixed(1)} | ${r.decode_tok_s.toFixed(1)} | ${(r.decode_tok_s / w1.decode_tok_s).toFixed(2)} | ${(r.decode_tok_s / w2.decode_tok_s).toFixed(2)} |`);
}
console.log(JSON.stringify({ rows, adapter: gpuInfo }));
