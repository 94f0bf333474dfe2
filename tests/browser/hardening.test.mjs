// Hardening in headless Chromium: every bad input through the JS API answered with a clear error
// (the engine usable afterwards), long use with flat memory and GPU objects (WebGPU with decode
// steps), aborts at every stage of a load, a lost WebGPU device, a cache that cannot store, too
// little storage reported, a strict CSP for the demo and the widget, no request beyond the model
// URL, and cache entries that stay with their own URL. Each WebGPU test first requires an adapter.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { serve, launch, inPageOf, nativeIds, requireWebGpu, defaultModel, root, here } from './harness.mjs';
import { siteRoots } from '../../scripts/serve.mjs';

const tiny = path.join(root, 'fuzz', 'seeds', 'gguf_engine', 'llama_f32.gguf');
let model, server, browser;
before(async () => {
  model = defaultModel();
  server = await serve({
    roots: { '/pkg/': path.join(root, 'pkg') },
    files: { '/': path.join(here, 'page.html'), '/model.gguf': model, '/tiny.gguf': tiny, '/notes.txt': path.join(root, 'README.md') },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
  assert.deepEqual(browser?.offsite ?? [], [], 'requests left 127.0.0.1');
});

/** Runs `fn(arg)` in a fresh page with `window.wisp` (harness.mjs inPageOf). */
function inPage(fn, arg, { ctx = browser.context, url = server.url, onPage } = {}) {
  return inPageOf(ctx, url, fn, arg, { onPage });
}

test('bad inputs through the JS API: each a clear error, and nothing lost', async () => {
  const got = await inPage(async () => {
    const msg = async (f) => { try { await f(); return null; } catch (e) { return `${e.name}: ${e.message}`; } };
    const out = {};
    // files
    out.notModel = await msg(() => wisp.Engine.load('/notes.txt', { backend: 'cpu', cache: false }));
    const bytes = new Uint8Array(await (await fetch('/model.gguf')).arrayBuffer());
    out.truncatedHeader = await msg(() => wisp.Engine.load(bytes.slice(0, 1000), { backend: 'cpu' }));
    out.truncatedData = await msg(() => wisp.Engine.load(bytes.slice(0, bytes.length - 1000), { backend: 'cpu' }));
    const badVersion = bytes.slice(0, 4096);
    badVersion[4] = 9;
    out.wrongVersion = await msg(() => wisp.Engine.load(badVersion, { backend: 'cpu' }));
    out.badSource = await msg(() => wisp.Engine.load(42, { backend: 'cpu' }));
    out.badBackend = await msg(() => wisp.Engine.load('/model.gguf', { backend: 'tpu' }));
    out.missing = await msg(() => wisp.Engine.load('/nope.gguf', { backend: 'cpu', cache: false }));

    const e = await wisp.Engine.load(bytes, { backend: 'cpu', ctx: 64 });
    const base = (await e.complete('Once upon a time', { temperature: 0, maxTokens: 6 })).tokens;
    // prompts and options
    out.tooLong = await msg(() => e.complete('word '.repeat(200), { maxTokens: 4 }));
    out.emptyPrompt = await msg(() => e.complete('', { maxTokens: 4 }));
    out.badIds = await msg(() => e.complete([1, 2, 999999], { maxTokens: 4 }));
    for (const v of [0, -1, 1.5, NaN, 'ten']) out[`maxTokens ${v}`] = await msg(() => e.complete('Hi', { maxTokens: v }));
    for (const [k, v] of [['temperature', NaN], ['temperature', -1], ['topP', 2], ['topP', 0], ['minP', -0.1],
      ['repetitionPenalty', 0], ['topK', -3], ['seed', 1.5], ['frequencyPenalty', Infinity], ['stop', 7]]) {
      out[`${k} ${v}`] = await msg(() => e.complete('Hi', { [k]: v }));
    }
    out.chatEmpty = await msg(() => e.chat.completions.create({ messages: [] }));
    out.chatRole = await msg(() => e.chat.completions.create({ messages: [{ role: '', content: 'hi' }] }));
    out.chatOverflow = await msg(() => e.chat.completions.create({ messages: [{ role: 'user', content: 'word '.repeat(100) }] }));
    // an absurd maxTokens is bounded by the context
    const long = await e.complete('Once upon a time', { temperature: 0, maxTokens: 1e9, ignoreEos: true });
    out.absurd = { finish: long.finishReason, total: long.usage.promptTokens + long.usage.completionTokens };
    // two generations at once are queued, never interleaved
    const [a, b] = await Promise.all([
      e.complete('Once upon a time', { temperature: 0, maxTokens: 6 }),
      e.complete('Once upon a time', { temperature: 0, maxTokens: 6 }),
    ]);
    out.concurrent = { a: a.tokens, b: b.tokens };
    out.after = (await e.complete('Once upon a time', { temperature: 0, maxTokens: 6 })).tokens;
    out.base = base;
    // calls after dispose
    await e.dispose();
    await e.dispose();
    out.afterDispose = [
      await msg(() => e.complete('Hi')), await msg(() => e.tokenize('Hi')), await msg(() => e.stats()),
      await msg(async () => { for await (const c of e.generate('Hi')) void c; }),
      await msg(() => e.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] })),
    ];
    const w = await wisp.createWorkerEngine('/model.gguf', { backend: 'cpu', cache: false });
    out.workerBad = await msg(() => w.complete('Hi', { maxTokens: -1 }));
    await w.dispose();
    out.workerAfterDispose = await msg(() => w.tokenize('Hi'));
    return out;
  });
  const m = (k, re) => assert.match(got[k] ?? 'no error', re, `${k}: ${got[k]}`);
  m('notModel', /not a GGUF file/);
  m('truncatedHeader', /truncated/);
  m('truncatedData', /truncated|ends before/);
  m('wrongVersion', /unsupported GGUF version 9/);
  m('badSource', /TypeError: .*source must be/);
  m('badBackend', /unknown backend 'tpu'/);
  m('missing', /HTTP 404/);
  m('tooLong', /prompt has \d+ tokens but the context holds 64/);
  m('emptyPrompt', /prompt.*empty/);
  m('badIds', /token 999999 is outside the vocabulary/);
  for (const v of [0, -1, 1.5, NaN, 'ten']) m(`maxTokens ${v}`, /RangeError: wisp: maxTokens must be/);
  m('temperature NaN', /temperature must be a finite number/);
  m('temperature -1', /temperature.*negative/);
  m('topP 2', /top_p.*outside/);
  m('topP 0', /top_p.*outside/);
  m('minP -0.1', /min_p.*outside/);
  m('repetitionPenalty 0', /repetition_penalty.*positive/);
  m('topK -3', /topK must be an integer of at least 0/);
  m('seed 1.5', /seed must be an integer/);
  m('frequencyPenalty Infinity', /frequencyPenalty must be a finite number/);
  m('stop 7', /stop must be a string/);
  m('chatEmpty', /messages must be a non-empty array/);
  m('chatRole', /empty role/);
  m('chatOverflow', /context holds 64/);
  // generation ends when the context is full: the last sampled token needs no position of its own
  assert.deepEqual(got.absurd, { finish: 'length', total: 65 });
  assert.deepEqual(got.concurrent.a, got.base, 'first of two concurrent calls');
  assert.deepEqual(got.concurrent.b, got.base, 'second of two concurrent calls');
  assert.deepEqual(got.after, got.base, 'the engine is unchanged by the bad calls');
  for (const e of got.afterDispose) assert.match(e ?? 'no error', /engine was disposed/);
  assert.match(got.workerBad ?? '', /RangeError: wisp: maxTokens must be/);
  assert.match(got.workerAfterDispose ?? '', /engine was disposed/);
});

test('bad model files through the JS API: architecture, tokenizer, tensor type, chat template', async () => {
  const got = await inPage(async () => {
    const msg = async (f) => { try { await f(); return null; } catch (e) { return `${e.name}: ${e.message}`; } };
    const good = new Uint8Array(await (await fetch('/tiny.gguf')).arrayBuffer());
    const enc = new TextEncoder();
    const find = (b, s) => {
      const n = enc.encode(s);
      outer: for (let i = 0; i + n.length <= b.length; i++) {
        for (let j = 0; j < n.length; j++) if (b[i + j] !== n[j]) continue outer;
        return i;
      }
      throw new Error(`${s} not in the file`);
    };
    // same-length byte patches, so every offset in the file stays valid
    const patched = (from, to, after = '') => {
      const b = good.slice();
      const at = find(b.subarray(find(b, after)), from) + find(b, after);
      b.set(enc.encode(to), at);
      return b;
    };
    const load = (b) => wisp.Engine.load(b, { backend: 'cpu' });
    const out = {};
    out.arch = await msg(() => load(patched('llama', 'mamba', 'general.architecture')));
    out.tokenizerModel = await msg(() => load(patched('gpt2', 'xyz1', 'tokenizer.ggml.model')));
    out.noTokenizer = await msg(() => load(patched('tokenizer.ggml.model', 'tokenizer.ggml.mode_')));
    out.templateParse = await msg(() => load(patched('{% endfor %}', '{% endfox %}')));
    // the tensor's type id follows its name, dimension count and dimensions
    const t = good.slice();
    const name = find(t, 'token_embd.weight') + 'token_embd.weight'.length;
    const view = new DataView(t.buffer);
    view.setUint32(name + 4 + 8 * view.getUint32(name, true), 23, true);
    out.tensorType = await msg(() => load(t));
    // renders fail only when used: string minus string
    const e = await load(patched("message['content'] +", "message['content'] -"));
    out.templateRender = await msg(() => e.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }));
    out.stillWorks = (await e.complete('ab', { maxTokens: 2, ignoreEos: true })).tokens.length;
    await e.dispose();
    return out;
  });
  const m = (k, re) => assert.match(got[k] ?? 'no error', re, `${k}: ${got[k]}`);
  m('arch', /unsupported architecture 'mamba' \(supported: llama, gpt2\)/);
  m('tokenizerModel', /unsupported tokenizer model 'xyz1'/);
  m('noTokenizer', /the file has no tokenizer \(missing 'tokenizer.ggml.model'\)/);
  m('templateParse', /chat template: cannot parse the model's chat template: syntax error/);
  m('tensorType', /tensor 'token_embd.weight' has unsupported type IQ4_XS/);
  m('templateRender', /chat template/);
  assert.equal(got.stillWorks, 2, 'the engine generates after a template error');
});

test('long use: 200 generations in one engine keep wasm memory flat', async () => {
  const got = await inPage(async () => {
    const e = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false, ctx: 256 });
    const prompts = ['Once upon a time', 'The capital of France is', 'def add(a, b):', 'Why is the sky blue?'];
    const samples = [];
    const messages = [];
    for (let i = 0; i < 200; i++) {
      const p = prompts[i % prompts.length];
      if (i % 4 === 1) {
        // a chat turn extending the conversation (KV reuse); a new one when it gets long
        if (messages.length > 6) messages.length = 0;
        messages.push({ role: 'user', content: p });
        const r = await e.chat.completions.create({ messages, max_tokens: 4, temperature: 0 });
        messages.push(r.choices[0].message);
      } else if (i % 4 === 3) {
        const ctl = new AbortController();
        let n = 0;
        try { for await (const c of e.generate(p, { maxTokens: 8, signal: ctl.signal })) if (++n === 2) ctl.abort(); } catch { /* aborted */ }
      } else {
        await e.complete(p, { maxTokens: 3, temperature: i % 4 === 2 ? 0.8 : 0, seed: i });
      }
      if ((i + 1) % 20 === 0) samples.push({ generation: i + 1, ms: Math.round(performance.now()), ...(await e.stats()) });
    }
    await e.dispose();
    return { samples };
  });
  for (const s of got.samples) console.log(`# after ${s.generation} generations (${s.ms} ms): wasm memory ${(s.wasmMemoryBytes / 1e6).toFixed(1)} MB, ${s.cachedTokens} cached tokens`);
  const first = got.samples[0];
  const last = got.samples.at(-1);
  assert.equal(got.samples.length, 10);
  assert.equal(last.wasmMemoryBytes, first.wasmMemoryBytes, 'wasm memory grew after the first 20 generations');
});

test('WebGPU long use with decode steps: greedy and sampled generations of several tokens, and a chat arriving mid-step, create no GPU objects', async () => {
  const n = 4;
  const want = nativeIds(model, 'Hi', { maxTokens: n }).ids;
  const wantChat = nativeIds(model, 'Hi', { chat: true, maxTokens: 2 }).text;
  const got = await inPage(async ({ n }) => {
    // SwiftShader takes seconds per token: one-token prompts, a few tokens each, so every
    // generation runs decode steps after its prefill
    const g = await wisp.Engine.load('/model.gguf', { backend: 'webgpu', cache: false, ctx: 64 });
    const stats = [{ after: 'load', ...(await g.stats()) }];
    const runs = [];
    const plan = [
      ['greedy (argmax on the GPU)', 'Hi', { temperature: 0 }],
      ['sampled on the GPU (top-k)', 'Why', { temperature: 0.8, topK: 40, seed: 1, ignoreEos: true }],
      ['sampled on the host (no top-k, no min-p: logits read back)', 'Hello', { temperature: 0.8, topK: 0, minP: 0, seed: 2, ignoreEos: true }],
    ];
    for (const [name, p, o] of plan) {
      const r = await g.complete(p, { maxTokens: n, ...o });
      runs.push({ name, tokens: r.tokens, finish: r.finishReason });
      stats.push({ after: name, ...(await g.stats()) });
    }
    // greedy again, streamed; a chat request arrives while a decode step waits for its readback
    // (the engine is borrowed across it): made when that step maps its readback buffer, it must
    // wait its turn, not find the engine busy
    let chat = null;
    let chatAt = null;
    let armed = false;
    const mapAsync = GPUBuffer.prototype.mapAsync;
    GPUBuffer.prototype.mapAsync = function (...args) {
      if (armed) {
        armed = false;
        queueMicrotask(() => {
          chatAt = streamed.length;
          chat = g.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], temperature: 0, max_tokens: 2 })
            .then((r) => r.choices[0].message.content, (e) => `error: ${e.message}`);
        });
      }
      return mapAsync.apply(this, args);
    };
    const streamed = [];
    for await (const c of g.generate('Hi', { temperature: 0, maxTokens: n })) {
      if (c.token !== null) streamed.push(c.token);
      if (streamed.length === 1 && chatAt === null && !armed) armed = true;
    }
    GPUBuffer.prototype.mapAsync = mapAsync;
    const chatText = await chat;
    stats.push({ after: 'streamed greedy + chat', ...(await g.stats()) });
    await g.dispose();
    return { stats, runs, streamed, chatText, chatAt };
  }, { n }, { onPage: requireWebGpu });
  for (const s of got.stats) console.log(`# WebGPU after ${s.after}: ${s.gpuBuffers} buffers, ${s.gpuBindGroups} bind groups, ${s.cachedTokens} cached tokens`);
  const [load] = got.stats;
  assert.ok(load.gpuBuffers > 10, 'the weights and activations are on the GPU');
  for (const s of got.stats) {
    assert.equal(s.gpuBuffers, load.gpuBuffers, `GPU buffers created by ${s.after}`);
    assert.equal(s.gpuBindGroups, load.gpuBindGroups, `bind groups created by ${s.after}`);
  }
  for (const r of got.runs) assert.equal(r.tokens.length, n, `${r.name}: ${n} tokens, so ${n - 1} decode steps`);
  assert.deepEqual(got.runs[0].tokens, want, 'greedy equals the native CLI');
  assert.deepEqual(got.streamed, want, 'greedy again after the sampled runs');
  assert.equal(got.chatAt, 1, 'the chat arrived during the second token\'s decode step');
  assert.equal(got.chatText, wantChat, 'the chat that arrived mid-step');
});

test('aborting a load while it parses, uploads or builds leaves the page able to load again', async () => {
  const got = await inPage(async () => {
    const out = {};
    for (const [backend, when] of [['webgpu', 'stream'], ['cpu', 'stream'], ['cpu', 'build'], ['webgpu', 'build']]) {
      const ctl = new AbortController();
      let err = null;
      let seen = 0;
      try {
        await wisp.Engine.load('/model.gguf', {
          backend, cache: false, signal: ctl.signal,
          // mid-stream: half the file is parsed (and, with WebGPU, its matrices uploaded)
          onProgress: (p) => { seen = p.loaded / p.total; if (when === p.phase || (when === 'stream' && seen > 0.5)) ctl.abort(); },
        });
      } catch (e) { err = e.name; }
      out[`${backend} ${when}`] = { err, seen };
    }
    const e = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false });
    out.tokens = (await e.complete('Once upon a time', { temperature: 0, maxTokens: 8 })).tokens;
    await e.dispose();
    return out;
  }, undefined, { onPage: requireWebGpu });
  for (const k of ['webgpu stream', 'cpu stream', 'cpu build', 'webgpu build']) {
    assert.equal(got[k].err, 'AbortError', `${k}: ${JSON.stringify(got[k])}`);
  }
  assert.ok(got['webgpu stream'].seen > 0.5 && got['webgpu stream'].seen < 1, 'aborted mid-stream');
  assert.deepEqual(got.tokens, nativeIds(model, 'Once upon a time', { maxTokens: 8 }).ids);
});

test('a lost WebGPU device is a clear error, and Engine.load works again afterwards', async () => {
  const got = await inPage(async () => {
    const msg = async (f) => { try { await f(); return null; } catch (e) { return String(e.message ?? e); } };
    // keep the device wisp opens, to destroy it
    const request = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...a) { window.device = await request.apply(this, a); return window.device; };
    const e = await wisp.Engine.load('/model.gguf', { backend: 'webgpu', cache: false, ctx: 64 });
    // one-token prompts: SwiftShader takes seconds per token
    const before = (await e.complete('Hi', { temperature: 0, maxTokens: 2 })).tokens;
    window.device.destroy();
    const lost = await msg(() => e.complete('Hi', { temperature: 0, maxTokens: 2 }));
    const again = await msg(() => e.complete('Hello', { temperature: 0.8, maxTokens: 2 }));
    await e.dispose();
    const e2 = await wisp.Engine.load('/model.gguf', { backend: 'webgpu', cache: false, ctx: 64 });
    const after = (await e2.complete('Hi', { temperature: 0, maxTokens: 2 })).tokens;
    await e2.dispose();
    return { before, lost, again, after };
  }, undefined, { onPage: requireWebGpu });
  assert.match(got.lost ?? 'no error', /GPU device was lost.*load the model again/);
  assert.match(got.again ?? 'no error', /GPU device was lost/);
  assert.deepEqual(got.after, got.before);
  assert.deepEqual(got.before, nativeIds(model, 'Hi', { maxTokens: 2 }).ids);
});

test('a cache that cannot store (quota exceeded) still lets the model run', async () => {
  const got = await inPage(async () => {
    Cache.prototype.put = () => Promise.reject(new DOMException('Quota exceeded.', 'QuotaExceededError'));
    const e = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: true });
    const r = await e.complete('Once upon a time', { temperature: 0, maxTokens: 8 });
    await e.dispose();
    // and a Cache API that cannot even open
    caches.open = () => Promise.reject(new DOMException('The operation is insecure.', 'SecurityError'));
    const e2 = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: true });
    const r2 = await e2.complete('Once upon a time', { temperature: 0, maxTokens: 8 });
    return { info: e.info, info2: e2.info, tokens: r.tokens, tokens2: r2.tokens };
  });
  const want = nativeIds(model, 'Once upon a time', { maxTokens: 8 }).ids;
  assert.deepEqual(got.tokens, want);
  assert.deepEqual(got.tokens2, want);
  assert.match(got.info.cacheError ?? '', /QuotaExceededError|Quota/);
  assert.match(got.info2.cacheError ?? '', /insecure|SecurityError/);
});

test('too little storage reported before a cached download: a clear error, nothing cached, and loading works again', async () => {
  const got = await inPage(async () => {
    const msg = async (f) => { try { await f(); return null; } catch (e) { return `${e.name}: ${e.message}`; } };
    await Promise.all((await caches.keys()).map((k) => caches.delete(k)));
    const real = StorageManager.prototype.estimate;
    StorageManager.prototype.estimate = async () => ({ quota: 50e6, usage: 10e6 });
    const err = await msg(() => wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: true }));
    const cachedAfterError = await wisp.Engine.cached();
    // the same storage, without the cache: the model loads
    const e = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false });
    const tokens = (await e.complete('Once upon a time', { temperature: 0, maxTokens: 8 })).tokens;
    await e.dispose();
    // with the browser's own estimate the cached load works, and keeps the file
    StorageManager.prototype.estimate = real;
    const e2 = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: true });
    const tokens2 = (await e2.complete('Once upon a time', { temperature: 0, maxTokens: 8 })).tokens;
    const info2 = e2.info;
    await e2.dispose();
    const cached = (await wisp.Engine.cached()).map((u) => new URL(u).pathname);
    await wisp.Engine.evict('/model.gguf');
    return { err, cachedAfterError, tokens, tokens2, info2, cached };
  });
  const mb = (fs.statSync(model).size / 1e6).toFixed(1);
  assert.equal(got.err, `Error: wisp: not enough storage to cache the model: it needs ${mb} MB, 40.0 MB is free; free some space or pass cache: false`);
  assert.deepEqual(got.cachedAfterError, [], 'nothing cached');
  const want = nativeIds(model, 'Once upon a time', { maxTokens: 8 }).ids;
  assert.deepEqual(got.tokens, want, 'cache: false loads');
  assert.deepEqual(got.tokens2, want, 'a real estimate loads');
  assert.equal(got.info2.cached, false);
  assert.equal(got.info2.cacheError, undefined);
  assert.deepEqual(got.cached, ['/model.gguf']);
});

test('the package requests nothing but its own files and the model URL; cache entries stay with their URL', async () => {
  const requests = [];
  const got = await inPage(async () => {
    await Promise.all((await caches.keys()).map((k) => caches.delete(k)));
    const a = await wisp.Engine.load('/tiny.gguf', { backend: 'cpu' });
    const ia = a.info;
    await a.dispose();
    // another URL, and the same path with a query, are different entries
    const b = await wisp.Engine.load('/model.gguf?v=2', { backend: 'cpu' });
    const ib = b.info;
    await b.dispose();
    const c = await wisp.Engine.load('/tiny.gguf', { backend: 'cpu' });
    const ic = c.info;
    await c.dispose();
    return { ia, ib, ic, cached: (await wisp.Engine.cached()).map((u) => new URL(u).pathname + new URL(u).search).sort() };
  }, undefined, { onPage: (page) => page.on('request', (r) => requests.push(new URL(r.url()).pathname + new URL(r.url()).search)) });
  assert.equal(got.ia.n_vocab, 268);
  assert.equal(got.ib.n_vocab, 49152, 'the second URL got its own file, not the cached one');
  assert.equal(got.ic.cached, true);
  assert.equal(got.ic.n_vocab, 268);
  assert.deepEqual(got.cached, ['/model.gguf?v=2', '/tiny.gguf']);
  const own = /^\/pkg\/(index\.js|worker-client\.js|generated\/(relaxed\/)?wisp\.js|generated\/(relaxed\/)?wisp_bg\.wasm)$/;
  const other = requests.filter((p) => !own.test(p) && !['/tiny.gguf', '/model.gguf?v=2', '/favicon.ico'].includes(p));
  assert.deepEqual(other, [], 'requests beyond the package and the model URLs');
  assert.equal(requests.filter((p) => p === '/tiny.gguf').length, 1, 'the cached file was not fetched again');
});

test('the demo page and the tutor widget work under a strict CSP', async () => {
  const csp = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";
  const site = siteRoots(root, model);
  site.files['/embed.html'] = path.join(here, 'embed.html');
  const strict = await serve({ ...site, csp });
  const violations = (page) => page.evaluate(() => window.violations);
  const watch = (page) => page.addInitScript(() => {
    window.violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  try {
    // the widget
    let p = await browser.context.newPage();
    await watch(p);
    await p.goto(strict.url + '/embed.html');
    await p.locator('wisp-tutor .status').filter({ hasText: 'Ready' }).waitFor({ timeout: 120_000 });
    const reply = p.evaluate(() => new Promise((r) => document.querySelector('wisp-tutor').addEventListener('reply', (e) => r(e.detail.text), { once: true })));
    await p.locator('wisp-tutor input').fill('What is the capital of France?');
    await p.locator('wisp-tutor input').press('Enter');
    assert.match(await reply, /Paris/);
    const styled = await p.evaluate(() => getComputedStyle(document.querySelector('wisp-tutor').shadowRoot.querySelector('.log')).overflowY);
    assert.equal(styled, 'auto', 'the widget is styled');
    assert.deepEqual(await violations(p), [], 'CSP violations in the widget page');
    await p.close();
    // the demo page
    p = await browser.context.newPage();
    await watch(p);
    await p.goto(strict.url + '/');
    await p.selectOption('#backend', 'cpu');
    await p.click('#loadBtn');
    await p.locator('#input:not([disabled])').waitFor({ timeout: 120_000 });
    await p.fill('#input', 'What is the capital of France?');
    await p.click('#send');
    await p.locator('#send:not([disabled])').waitFor({ timeout: 120_000 });
    const answer = await p.locator('#log .assistant').last().textContent();
    assert.ok(answer.trim().length > 1 && !answer.startsWith('(error'), `demo reply: ${answer}`);
    assert.deepEqual(await violations(p), [], 'CSP violations in the demo page');
    await p.close();
  } finally {
    await strict.close();
  }
});
